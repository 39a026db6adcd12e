/**
 * Text from elsewhere (retained MQTT messages, the journal, device names) on a technician's
 * terminal: control characters would let whoever wrote it clear the screen, hide rows, set the
 * title or write the clipboard (OSC 52), and bidirectional overrides would reorder what is shown.
 * Each such character is shown as a visible escape (\x1b, \u202e) instead, and a field is cut to a
 * width so one value cannot push the others off the line.
 */

// C0 controls (tab and newline included: a cell is one line), DEL, C1 controls, and the Unicode
// bidirectional and zero-width formatting characters.
// biome-ignore lint/suspicious/noControlCharactersInRegex: finding control characters is the point
const UNSAFE = /[\u0000-\u001f\u007f-\u009f\u200b-\u200f\u2028-\u202e\u2060-\u2069\ufeff]/g;

const visible = (c: string): string => {
  const n = c.charCodeAt(0);
  return n <= 0xff ? `\\x${n.toString(16).padStart(2, '0')}` : `\\u${n.toString(16).padStart(4, '0')}`;
};

/** One line of text, safe for a terminal, at most `max` characters (cut with "…"). */
export function termSafe(text: string, max = 80): string {
  const s = text.replace(UNSAFE, visible);
  const chars = [...s];
  return chars.length > max ? `${chars.slice(0, max - 1).join('')}…` : s;
}

/** Several lines (probe's report): each line made safe and cut to `max`, the newlines kept. */
export function termSafeLines(text: string, max = 240): string {
  return text
    .split('\n')
    .map((line) => termSafe(line, max))
    .join('\n');
}
