// Runs examples/char_lm.ts as a user would, briefly, on a tiny text.
import assert from "node:assert/strict";
import { CharTokenizer, generate, loadModel } from "../mod.ts";
import { withTempDir } from "./_temp_dir.ts";

const EXAMPLE = new URL("../examples/char_lm.ts", import.meta.url).pathname;

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

async function run(args: string[], permissions: string[] = ["--allow-read"]): Promise<Run> {
  const { code, stdout, stderr } = await new Deno.Command(Deno.execPath(), {
    args: ["run", ...permissions, EXAMPLE, ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const decoder = new TextDecoder();
  return { code, stdout: decoder.decode(stdout), stderr: decoder.decode(stderr) };
}

// A tiny run: two epochs of two steps on small windows.
const TINY = ["--epochs", "2", "--steps", "2", "--context", "8", "--batch", "4", "--sample", "16"];

Deno.test("examples/char_lm.ts", async (t) => {
  await t.step("--help prints the usage and the flags", async () => {
    const { code, stdout } = await run(["--help"]);
    assert.equal(code, 0);
    assert.match(stdout, /Usage: deno run --allow-read examples\/char_lm.ts/);
    for (const name of ["model", "text", "epochs", "context", "batch", "temperature", "sample"]) {
      assert.match(stdout, new RegExp(`--${name} `), name);
    }
    assert.match(stdout, /apt-get install wamerican/);
  });

  await t.step("bad flags exit with status 2 and say why", async () => {
    const model = await run(["--model", "rnn"]);
    assert.equal(model.code, 2);
    assert.match(model.stderr, /char_lm: --model must be gpt, lstm or gru, got "rnn"/);
    const context = await run(["--context", "0"]);
    assert.equal(context.code, 2);
    assert.match(context.stderr, /--context must be an integer ≥ 1, got "0"/);
    const lines = await run(["--lines", "sideways"]);
    assert.equal(lines.code, 2);
    assert.match(lines.stderr, /--lines must be shuffle or keep, got "sideways"/);
    const temperature = await run(["--temperature", "hot"]);
    assert.equal(temperature.code, 2);
    assert.match(temperature.stderr, /--temperature must be a number ≥ 0, got "hot"/);
  });

  await withTempDir(async (dir) => {
    const textPath = `${dir}/tiny.txt`;
    await Deno.writeTextFile(textPath, "hello world\n".repeat(40));

    await t.step("a missing or too short text is an error", async () => {
      const missing = await run(["--text", `${dir}/none.txt`]);
      assert.equal(missing.code, 1);
      assert.match(missing.stderr, /char_lm: cannot read .*none.txt/);
      await Deno.writeTextFile(`${dir}/short.txt`, "abcdef");
      const short = await run(["--text", `${dir}/short.txt`, "--context", "8"]);
      assert.equal(short.code, 1);
      assert.match(short.stderr, /has 6 characters; --context 8 needs at least 9/);
    });

    await t.step("--save and --plot need write access", async () => {
      const { code, stderr } = await run(["--text", textPath, ...TINY, "--save", `${dir}/m`]);
      assert.equal(code, 2);
      assert.match(stderr, /--save needs write access/);
    });

    for (const kind of ["gpt", "lstm", "gru"]) {
      await t.step(`--model ${kind} trains, samples, plots and saves`, async () => {
        const save = `${dir}/${kind}.safetensors`;
        const plot = `${dir}/${kind}.svg`;
        const { code, stdout, stderr } = await run(
          [
            ...["--text", textPath, "--model", kind, ...TINY, "--save", save, "--plot", plot],
            ...(kind === "gpt" ? ["--lines", "shuffle"] : []),
          ],
          ["--allow-read", `--allow-write=${dir}`],
        );
        assert.equal(code, 0, stderr);
        const shuffled = kind === "gpt" ? " (lines shuffled)" : "";
        assert.ok(
          stdout.includes(
            `tiny.txt${shuffled}: 480 characters, 9 distinct; training on the first 432,`,
          ),
          stdout,
        );
        assert.match(stdout, /--- sample before training \(temperature 0.8\) ---\n/);
        for (const epoch of [1, 2]) {
          const line =
            `Epoch ${epoch}/2 - 2/2 steps - .* - loss: \\d+\\.\\d{4} - .*valLoss: \\d+\\.\\d{4}`;
          assert.match(stdout, new RegExp(line));
        }
        assert.match(stdout, /--- sample after epoch 1 ---\n/);
        assert.doesNotMatch(stdout, /sample after epoch 2/); // the final sample follows it
        assert.match(stdout, /trained in [\d.]+ s .* validation loss \d+\.\d{4} nats/);
        assert.match(stdout, /--- final sample \(prompt "\\n", temperature 0.8\) ---\n/);
        // The samples hold only characters of the text.
        const samples = [...stdout.matchAll(/---\n([^]*?)\n---/g)].map((m) => m[1]);
        assert.equal(samples.length, 3);
        assert.deepEqual(samples.map((s) => [...s].length), [16, 16, 32]);
        for (const s of samples) assert.match(s, /^[helo wrd\n]*$/);
        assert.match(await Deno.readTextFile(plot), /^<svg /);
        const { model, metadata } = await loadModel(save);
        const tokenizer = CharTokenizer.fromJSON(metadata.tokenizer);
        assert.deepEqual(tokenizer.chars, ["\n", " ", "d", "e", "h", "l", "o", "r", "w"]);
        const out = generate(model, tokenizer.encode("hel"), { maxNewTokens: 5, temperature: 0 });
        assert.equal(out.length, 8);
      });
    }
  });
});
