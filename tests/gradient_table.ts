// Prints the max relative gradient error of every check in tests/_gradient_cases.ts as a
// Markdown table: deno run tests/gradient_table.ts
import { gradientCases } from "./_gradient_cases.ts";

console.log("| plugin | check | max relative error |\n| --- | --- | --- |");
const cell = (text: string) => text.replaceAll("|", "\\|");
for (const { plugin, what, run } of gradientCases) {
  console.log(`| ${plugin} | ${cell(what)} | ${run().maxRelativeError.toExponential(1)} |`);
}
