// A small, strict XML well-formedness checker for the SVG tests (Deno has no DOMParser): it
// accepts the subset of XML 1.0 that SVG documents use and throws on anything malformed.

/** An element of the parsed document. */
export interface XmlElement {
  name: string;
  attributes: Record<string, string>;
  children: XmlElement[];
  text: string;
}

const NAME = /[A-Za-z_:][A-Za-z0-9_:.-]*/y;
const SPACE = /\s*/y;
const ENTITY = /&(?:amp|lt|gt|quot|apos|#[0-9]+|#x[0-9a-fA-F]+);/y;

/** Parses `source`, throwing a SyntaxError with the offset of the first problem. */
export function parseXml(source: string): XmlElement {
  let pos = 0;
  const fail = (what: string): never => {
    throw new SyntaxError(
      `parseXml: ${what} at offset ${pos}: ${JSON.stringify(source.slice(pos, pos + 30))}`,
    );
  };
  const match = (re: RegExp): string | undefined => {
    re.lastIndex = pos;
    const m = re.exec(source);
    if (!m) return undefined;
    pos += m[0].length;
    return m[0];
  };
  const skipMisc = () => {
    for (;;) {
      match(SPACE);
      if (source.startsWith("<!--", pos)) {
        const end = source.indexOf("-->", pos + 4);
        if (end < 0) fail("unterminated comment");
        pos = end + 3;
      } else if (source.startsWith("<?", pos)) {
        const end = source.indexOf("?>", pos);
        if (end < 0) fail("unterminated processing instruction");
        pos = end + 2;
      } else return;
    }
  };
  const characters = (text: string, where: string) => {
    for (let i = text.indexOf("&"); i >= 0; i = text.indexOf("&", i + 1)) {
      ENTITY.lastIndex = i;
      if (!ENTITY.test(text)) fail(`bad entity reference in ${where}`);
    }
  };
  const element = (): XmlElement => {
    if (source[pos] !== "<") fail("expected <");
    pos++;
    const name = match(NAME) ?? fail("expected an element name");
    const attributes: Record<string, string> = {};
    for (;;) {
      const spaced = match(/\s+/y);
      if (source.startsWith("/>", pos)) {
        pos += 2;
        return { name, attributes, children: [], text: "" };
      }
      if (source[pos] === ">") {
        pos++;
        break;
      }
      if (!spaced) fail("expected whitespace before an attribute");
      const key = match(NAME) ?? fail("expected an attribute name");
      if (Object.hasOwn(attributes, key)) fail(`duplicate attribute ${key}`);
      match(SPACE);
      if (source[pos] !== "=") fail("expected =");
      pos++;
      match(SPACE);
      const quote = source[pos];
      if (quote !== '"' && quote !== "'") fail("expected a quoted attribute value");
      const end = source.indexOf(quote, pos + 1);
      if (end < 0) fail("unterminated attribute value");
      const value = source.slice(pos + 1, end);
      if (value.includes("<")) fail("< in an attribute value");
      characters(value, `attribute ${key}`);
      attributes[key] = value;
      pos = end + 1;
    }
    const children: XmlElement[] = [];
    let text = "";
    for (;;) {
      const next = source.indexOf("<", pos);
      if (next < 0) fail(`unclosed <${name}>`);
      const chunk = source.slice(pos, next);
      if (chunk.includes(">") && chunk.includes("]]>")) fail("]]> in text");
      characters(chunk, `text of <${name}>`);
      text += chunk;
      pos = next;
      if (source.startsWith("</", pos)) {
        pos += 2;
        const closing = match(NAME);
        if (closing !== name) fail(`</${closing}> closes <${name}>`);
        match(SPACE);
        if (source[pos] !== ">") fail("expected > after a closing tag name");
        pos++;
        return { name, attributes, children, text };
      }
      if (source.startsWith("<!--", pos)) {
        skipMisc();
        continue;
      }
      children.push(element());
    }
  };
  skipMisc();
  const root = element();
  skipMisc();
  if (pos !== source.length) fail("content after the root element");
  return root;
}

/** Every element below (and including) `root` named `name`, in document order. */
export function findAll(root: XmlElement, name: string): XmlElement[] {
  const out: XmlElement[] = [];
  const visit = (e: XmlElement) => {
    if (e.name === name) out.push(e);
    e.children.forEach(visit);
  };
  visit(root);
  return out;
}
