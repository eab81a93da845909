// tests/app/serve/web/persons.test.mjs - the People toggle of the page
// `clipdex serve` serves, in headless Chromium (tests/app/person/
// test_index_persons.sh runs it against an index made with --detector
// person): ticking it searches the people (the grid ranks as POST
// /v1/search {"persons": true} does), every card draws one box, and the box
// sits where the person is in the card's square thumbnail (computed here
// from the API's box and image size, independently of the page's code).
// Usage: node persons.test.mjs URL OUTDIR. Prints "ok"/"FAIL" lines.
import { launch, checker } from "./browser.mjs";

const [url, outdir] = process.argv.slice(2);
const check = checker();
const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url + "/");
  await page.check("#persons");
  await page.fill("#q", "a person");
  await page.waitForFunction(() => document.querySelectorAll(".result.person").length > 0);
  const api = await (await fetch(url + "/v1/search", {
    method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ text: "a person", persons: true, k: 48 }),
  })).json();
  const cards = await page.$$eval(".result", (els) => els.map((e) => ({
    person: Number(e.dataset.person), boxes: e.querySelectorAll(".pbox").length })));
  check("the grid ranks the people as the API does",
    JSON.stringify(cards.map((c) => c.person)) === JSON.stringify(api.results.map((r) => r.person)),
    JSON.stringify(cards.map((c) => c.person)));
  check("every card draws one box", cards.length > 0 && cards.every((c) => c.boxes === 1));
  await page.waitForFunction(() => [...document.querySelectorAll(".result img")].every((i) => i.complete));
  // where the box should be: the image as "cover" shows it in a square of its
  // shorter side m, the square moved as far as it may towards the box centre
  const geo = await page.$$eval(".result", (els) => els.map((e) => {
    const a = e.querySelector("img").getBoundingClientRect(), b = e.querySelector(".pbox").getBoundingClientRect();
    return { side: a.width, x: b.left - a.left, y: b.top - a.top, w: b.width, h: b.height };
  }));
  let worst = 0, worstAt = "";
  api.results.forEach((r, i) => {
    const [x0, y0, x1, y1] = r.box, m = Math.min(r.width, r.height);
    const start = (c, full) => Math.max(0, Math.min(full - m, c - m / 2));
    const sx = start((x0 + x1) / 2, r.width), sy = start((y0 + y1) / 2, r.height);
    const k = geo[i].side / m;
    const want = [(x0 - sx) * k, (y0 - sy) * k, (x1 - x0) * k, (y1 - y0) * k];
    const got = [geo[i].x, geo[i].y, geo[i].w, geo[i].h];
    want.forEach((v, j) => {
      if (Math.abs(v - got[j]) > worst) { worst = Math.abs(v - got[j]); worstAt = `#${i} want ${want.map((x) => x.toFixed(1))} got ${got.map((x) => x.toFixed(1))}`; }
    });
  });
  check("each box sits on its person in the thumbnail (within 2.5 px)", worst <= 2.5, "worst " + worst.toFixed(2) + " px at " + worstAt);
  const label = await page.textContent(".result .who");
  check("a card names the person's score", /^person \d\.\d\d/.test(label), label);
  await page.screenshot({ path: outdir + "/page-persons.png", fullPage: true });
  await page.uncheck("#persons");
  await page.waitForFunction(() => document.querySelectorAll(".result.person").length === 0 &&
    document.querySelectorAll(".result").length > 0);
  check("unticked, the page searches photos again (no boxes)", (await page.$$(".pbox")).length === 0);
  check("no page errors", errors.length === 0, errors.join("; "));
} finally {
  await browser.close();
}
console.log(`persons page: ${check.passed} passed, ${check.failed} failed`);
process.exit(check.failed ? 1 : 0);
