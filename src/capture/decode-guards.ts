/**
 * The largest image decoded from outside (uploads, image folders): 25 megapixels, 75 MB as RGB. A
 * decode at the limit peaks at about 220 MB of RSS (bench:abuse), so one at a time keeps the
 * daemon under 600 MB (docs/performance.md).
 */
export const MAX_PIXELS = 25_000_000;

/**
 * The sharp options of every decode of an image from outside: a pixel limit, so a small file
 * cannot expand into gigabytes, and any decoder warning is an error. sharp's `failOn` levels go
 * none < truncated < error < warning; a JPEG cut short and closed with an end marker passes
 * `truncated` and `error` (libjpeg only warns "premature end of data segment" and fills the
 * missing rows with grey, which the model would classify), and fails only at `warning`.
 */
export const DECODE_GUARDS = { limitInputPixels: MAX_PIXELS, failOn: 'warning' } as const;
