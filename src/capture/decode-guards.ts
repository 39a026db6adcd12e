/** The largest image decoded from outside (uploads, image folders): 50 megapixels, 150 MB as RGB. */
export const MAX_PIXELS = 50_000_000;

/**
 * The sharp options of every decode of an image from outside: a pixel limit, so a small file
 * cannot expand into gigabytes, and any decoder warning is an error. sharp's `failOn` levels go
 * none < truncated < error < warning; a JPEG cut short and closed with an end marker passes
 * `truncated` and `error` (libjpeg only warns "premature end of data segment" and fills the
 * missing rows with grey, which the model would classify), and fails only at `warning`.
 */
export const DECODE_GUARDS = { limitInputPixels: MAX_PIXELS, failOn: 'warning' } as const;
