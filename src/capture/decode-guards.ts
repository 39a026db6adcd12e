/**
 * The largest image decoded from outside (uploads, image folders): 4096 x 4096 pixels (a 12 MP
 * photo, a 4K frame), 50 MB as RGB. A decode at the limit costs about 150 MB of RSS at its peak
 * (bench:abuse), so one at a time keeps the daemon under 600 MB (docs/performance.md).
 */
export const MAX_PIXELS = 4096 * 4096;

/**
 * The sharp options of every decode of an image from outside: a pixel limit, so a small file
 * cannot expand into gigabytes, and any decoder warning is an error. sharp's `failOn` levels go
 * none < truncated < error < warning; a JPEG cut short and closed with an end marker passes
 * `truncated` and `error` (libjpeg only warns "premature end of data segment" and fills the
 * missing rows with grey, which the model would classify), and fails only at `warning`.
 */
export const DECODE_GUARDS = { limitInputPixels: MAX_PIXELS, failOn: 'warning' } as const;
