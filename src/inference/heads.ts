import type { OutputTensor } from './detect.js';

/**
 * Several output heads of one role (one per stride, as most detectors export them) joined into one
 * tensor, in the order the manifest lists them. `axis: 'rows'` joins [1, N_i, K] (or [N_i, K])
 * along N into [1, sum N_i, K]; `axis: 'columns'` joins [1, K, N_i] (YOLOv8 layout) along the last
 * axis. One head passes through untouched; joined buffers are reused from frame to frame.
 */
export class HeadJoiner {
  private buf = new Float32Array(0);

  join(heads: readonly OutputTensor[], axis: 'rows' | 'columns'): OutputTensor {
    if (heads.length === 1) {
      const t = heads[0];
      // [N, K] as [1, N, K], so every decoder sees one layout.
      return axis === 'rows' && t.dims.length === 2 ? { data: t.data, dims: [1, ...t.dims] } : t;
    }
    const total = heads.reduce((s, t) => s + t.data.length, 0);
    if (this.buf.length !== total) this.buf = new Float32Array(total);
    const out = this.buf;
    if (axis === 'rows') {
      let o = 0;
      let rows = 0;
      for (const t of heads) {
        out.set(t.data, o);
        o += t.data.length;
        rows += t.dims[t.dims.length - 2];
      }
      return { data: out, dims: [1, rows, heads[0].dims[heads[0].dims.length - 1]] };
    }
    const K = heads[0].dims[heads[0].dims.length - 2];
    const N = heads.reduce((s, t) => s + t.dims[t.dims.length - 1], 0);
    let col = 0;
    for (const t of heads) {
      const n = t.dims[t.dims.length - 1];
      for (let k = 0; k < K; k++) {
        const row = k * n;
        for (let i = 0; i < n; i++) out[k * N + col + i] = t.data[row + i];
      }
      col += n;
    }
    return { data: out, dims: [1, K, N] };
  }
}
