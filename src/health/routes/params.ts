/** Query parameters of the streaming routes (/events, /preview.mjpeg). */

/** One problem per parameter not in `valid`. */
export function unknownParams(url: URL, valid: readonly string[]): string[] {
  const out: string[] = [];
  for (const k of new Set(url.searchParams.keys())) {
    if (!valid.includes(k)) out.push(`${k}: unknown parameter (valid: ${valid.join(', ')})`);
  }
  return out;
}

/** Every value of a parameter, repeated (`?camera=a&camera=b`) or comma-separated (`?camera=a,b`), without empties. */
export function listParam(url: URL, name: string): string[] {
  return [
    ...new Set(
      url.searchParams
        .getAll(name)
        .flatMap((v) => v.split(','))
        .map((v) => v.trim())
        .filter((v) => v !== ''),
    ),
  ];
}
