// GraphBuilder: adds path-named nodes (`/model/layers.3/attn/o_proj/MatMul`, outputs `<node>/output_0`) to an IR model.
import { attr, Graph, Model, Node, Tensor, tensorType, type Attribute } from '../onnx/ir.js';
import { DataType } from '../onnx/dtype.js';
import { float32ToFloat16Bits, viewBytes } from '../onnx/tensor.js';
import { OnnxError } from '../util/errors.js';

export const MS_DOMAIN = 'com.microsoft';

export interface OpOptions {
  domain?: string;
  attrs?: Attribute[];
  /** How many outputs (named `<name>/output_<i>`), or explicit names ('' leaves an optional output out). */
  outputs?: number | readonly string[];
}

/** The floating types activations and weights are built in. */
export type FloatDtype = typeof DataType.FLOAT | typeof DataType.FLOAT16;

/**
 * Builds one graph. Node names are unique (a repeated name is a bug in a builder, so it throws); small constants are
 * Constant nodes named `/model/constants/<TYPE>/<value>` as onnxruntime-genai names them, made once and shared.
 */
export class GraphBuilder {
  readonly model: Model;
  readonly graph: Graph;
  private readonly names = new Set<string>();
  private readonly constants = new Set<string>();

  constructor(graphName = 'main_graph') {
    this.graph = new Graph(graphName);
    this.model = new Model(this.graph, [
      { domain: '', version: 21 },
      { domain: MS_DOMAIN, version: 1 },
    ]);
    this.model.irVersion = 10;
    this.model.producerName = 'phi-forge';
  }

  /** Adds a node; returns its output value names. */
  op(opType: string, name: string, inputs: readonly string[], opts: OpOptions = {}): string[] {
    if (this.names.has(name)) {
      throw new OnnxError('ONNX_DUPLICATE_NODE', `node name ${name} is used twice`, {
        where: `node ${name} (${opType})`,
        fix: 'this is a bug in a graph builder: each builder call needs its own path',
      });
    }
    this.names.add(name);
    const outs = opts.outputs ?? 1;
    const outputs = typeof outs === 'number' ? Array.from({ length: outs }, (_, i) => `${name}/output_${i}`) : [...outs];
    this.graph.addNode(
      new Node({ opType, name, domain: opts.domain ?? '', inputs: [...inputs], outputs, attributes: opts.attrs ?? [] }),
    );
    return outputs;
  }

  /** A one-output node; returns the output name. */
  op1(opType: string, name: string, inputs: readonly string[], opts: Omit<OpOptions, 'outputs'> & { output?: string } = {}): string {
    return this.op(opType, name, inputs, { ...opts, outputs: opts.output ? [opts.output] : 1 })[0];
  }

  input(name: string, elemType: number, shape: readonly (number | string)[]): string {
    this.graph.inputs.push({ name, type: tensorType(elemType, shape) });
    return name;
  }

  output(name: string, elemType: number, shape: readonly (number | string)[]): void {
    this.graph.outputs.push({ name, type: tensorType(elemType, shape) });
  }

  initializer(t: Tensor): string {
    this.graph.addInitializer(t);
    return t.name;
  }

  /** An int64 constant: a scalar for a number, a 1-D tensor for an array. */
  int64(value: number | readonly number[]): string {
    const dims = typeof value === 'number' ? [] : [value.length];
    const list = typeof value === 'number' ? [value] : [...value];
    return this.constant(`INT64/${format(value)}`, () => Tensor.fromInt64('value', dims, list));
  }

  /** A scalar floating constant in the given dtype. */
  float(value: number, dtype: FloatDtype): string {
    const type = dtype === DataType.FLOAT16 ? 'FLOAT16' : 'FLOAT';
    return this.constant(`${type}/${value}`, () => scalarFloat(value, dtype));
  }

  private constant(key: string, make: () => Tensor): string {
    const name = `/model/constants/${key}`;
    if (!this.constants.has(name)) {
      this.constants.add(name);
      this.op('Constant', `/model/constant_nodes/${key}`, [], { attrs: [attr.tensor('value', make())], outputs: [name] });
    }
    return name;
  }
}

function format(value: number | readonly number[]): string {
  return typeof value === 'number' ? String(value) : `[${value.join(', ')}]`;
}

/** A 0-d tensor holding one float in FLOAT or FLOAT16. */
export function scalarFloat(value: number, dtype: FloatDtype, name = 'value'): Tensor {
  const f = Float32Array.of(value);
  if (dtype === DataType.FLOAT) return Tensor.fromFloat32(name, [], f);
  return Tensor.fromBytes(name, DataType.FLOAT16, [], viewBytes(float32ToFloat16Bits(f)));
}
