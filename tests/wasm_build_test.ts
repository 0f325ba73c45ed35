import assert from "node:assert/strict";
import {
  PLAIN_KERNELS,
  PLAIN_KERNELS_F64,
  RELAXED_KERNELS,
  RELAXED_KERNELS_F64,
  TILE,
  TILE_F64,
} from "../backends/_wasm_kernels.ts";
import { buildKernels, DEFAULT_CONFIG, DEFAULT_CONFIG_F64 } from "../tools/wasm/kernels.ts";

function base64(bytes: Uint8Array): string {
  let binary = "";
  for (const byte of bytes) binary += String.fromCharCode(byte);
  return btoa(binary);
}

Deno.test("the committed wasm bytes equal a fresh build of tools/wasm/kernels.ts", () => {
  assert.deepEqual(TILE, { mr: DEFAULT_CONFIG.mr, nr: DEFAULT_CONFIG.nr });
  assert.equal(RELAXED_KERNELS, base64(buildKernels({ ...DEFAULT_CONFIG, relaxed: true })));
  assert.equal(PLAIN_KERNELS, base64(buildKernels({ ...DEFAULT_CONFIG, relaxed: false })));
  assert.deepEqual(TILE_F64, { mr: DEFAULT_CONFIG_F64.mr, nr: DEFAULT_CONFIG_F64.nr });
  assert.equal(
    RELAXED_KERNELS_F64,
    base64(buildKernels({ ...DEFAULT_CONFIG_F64, relaxed: true })),
  );
  assert.equal(PLAIN_KERNELS_F64, base64(buildKernels({ ...DEFAULT_CONFIG_F64, relaxed: false })));
});

Deno.test("both kernel builds validate, and only one uses relaxed SIMD", () => {
  const relaxed = buildKernels({ ...DEFAULT_CONFIG, relaxed: true });
  const plain = buildKernels({ ...DEFAULT_CONFIG, relaxed: false });
  assert.ok(WebAssembly.validate(relaxed as Uint8Array<ArrayBuffer>));
  assert.ok(WebAssembly.validate(plain as Uint8Array<ArrayBuffer>));
  // f32x4.relaxed_madd is 0xfd 0x85 0x02.
  const hasMadd = (bytes: Uint8Array) =>
    bytes.some((b, i) => b === 0xfd && bytes[i + 1] === 0x85 && bytes[i + 2] === 0x02);
  assert.ok(hasMadd(relaxed));
  assert.ok(!hasMadd(plain));
  // f64x2.relaxed_madd is 0xfd 0x87 0x02.
  const relaxed64 = buildKernels({ ...DEFAULT_CONFIG_F64, relaxed: true });
  const plain64 = buildKernels({ ...DEFAULT_CONFIG_F64, relaxed: false });
  assert.ok(WebAssembly.validate(relaxed64 as Uint8Array<ArrayBuffer>));
  assert.ok(WebAssembly.validate(plain64 as Uint8Array<ArrayBuffer>));
  const hasMadd64 = (bytes: Uint8Array) =>
    bytes.some((b, i) => b === 0xfd && bytes[i + 1] === 0x87 && bytes[i + 2] === 0x02);
  assert.ok(hasMadd64(relaxed64));
  assert.ok(!hasMadd64(plain64));
});
