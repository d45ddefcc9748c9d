/** The last non-blank lines of `text` on one line, at most `maxChars` characters: for a message. */
export function oneLineTail(text: string, maxChars: number): string {
  const line = text
    .split(/\r?\n/)
    .map((part) => part.trim())
    .filter(Boolean)
    .join(' ');
  return line.length > maxChars ? `…${line.slice(-maxChars)}` : line;
}
