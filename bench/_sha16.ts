/** First 16 hex digits of SHA-256 over the arrays' little-endian bytes (floats as float32). */
export async function sha16(...arrays: ArrayLike<number>[]): Promise<string> {
  const parts = arrays.map((a) => {
    const typed = a instanceof Float32Array || a instanceof Int32Array
      ? a
      : a instanceof Float64Array
      ? Float32Array.from(a)
      : Int32Array.from(a);
    return new Uint8Array(typed.buffer, typed.byteOffset, typed.byteLength);
  });
  const bytes = new Uint8Array(parts.reduce((sum, p) => sum + p.length, 0));
  let offset = 0;
  for (const part of parts) {
    bytes.set(part, offset);
    offset += part.length;
  }
  const digest = new Uint8Array(await crypto.subtle.digest("SHA-256", bytes));
  return Array.from(digest.slice(0, 8), (b) => b.toString(16).padStart(2, "0")).join("");
}
