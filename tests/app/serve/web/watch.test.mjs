// tests/app/serve/web/watch.test.mjs - the live watch page (/watch.html) of
// `clipdex serve` in headless Chromium, on a live slideshow stream: typing
// the input and a prompt and pressing Start starts a watch (as GET
// /v1/watch then says), the stream's card shows its latest frame, the score
// bar follows the Server-Sent Events (its number equals a frame event's
// score read by the page itself), events appear in the log, a second prompt
// (negative, ensemble) applied while it runs gets its own bar, moving the
// threshold slider changes the server's threshold, and Stop stops it.
// and a watch of two inputs shows the focused one in front.
// Usage: node watch.test.mjs URL INPUT OUTDIR FILE
// Prints one "ok"/"FAIL" line per check and "watch page: N passed, N failed".
import { launch, checker } from "./browser.mjs";

const [url, input, outdir] = process.argv.slice(2);
const check = checker();
const state = async () => (await fetch(url + "/v1/watch")).json();

const browser = await launch();
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url + "/watch.html");
  // the page starts from the last watch's inputs and prompts: start afresh
  await page.waitForFunction(() => document.querySelectorAll(".prompt").length > 0);
  await page.evaluate(() => document.querySelectorAll(".prompt").forEach((r) => r.remove()));
  await page.click("#add");
  await page.fill("#inputs", input);
  await page.fill(".prompt .text", "a cat");
  await page.$eval("#threshold", (e) => { e.value = "-1"; e.dispatchEvent(new Event("input")); });
  await page.click("#start");
  await page.waitForFunction(() => /watching 1 input/.test(document.getElementById("status").textContent));
  const s = await state();
  check("Start starts the watch", s.running && s.inputs[0].uri === input && s.prompts[0].text === "a cat",
        JSON.stringify(s).slice(0, 300));
  // the page's own EventSource: the bar's number is the latest frame score
  await page.evaluate(() => {
    window.lastFrame = null;
    new EventSource("/v1/watch/events").addEventListener("frame", (e) => { window.lastFrame = JSON.parse(e.data); });
  });
  await page.waitForFunction(() => {
    const b = document.querySelector('.stream[data-input="0"] .bar[data-prompt="0"]');
    return b && b.dataset.score !== undefined && window.lastFrame;
  }, null, { timeout: 20000 });
  const same = await page.waitForFunction(() => {
    const b = document.querySelector('.stream[data-input="0"] .bar[data-prompt="0"]');
    const f = window.lastFrame;
    return f && Math.abs(parseFloat(b.dataset.score) - f.scores[0]) < 1e-9 ? [b.dataset.score, f.scores[0]] : false;
  }, null, { timeout: 20000 }).then((h) => h.jsonValue()).catch(() => null);
  check("the score bar shows the stream's latest score", !!same, JSON.stringify(same));
  const width = await page.$eval('.stream[data-input="0"] .bar[data-prompt="0"] .fill', (e) => e.style.width);
  check("the bar has a width", /%$/.test(width) && parseFloat(width) > 0, width);
  await page.waitForFunction(() => { const i = document.querySelector('.stream[data-input="0"] img'); return i && i.complete && i.naturalWidth > 0; },
                             null, { timeout: 20000 });
  const w = await page.$eval('.stream[data-input="0"] img', (i) => i.naturalWidth);
  check("the stream's latest frame is shown", w > 0 && w <= 320, String(w));
  await page.waitForFunction(() => document.querySelectorAll("#events .ev").length > 0, null, { timeout: 20000 })
    .then(() => check("events appear in the log", true))
    .catch(async () => check("events appear in the log", false, JSON.stringify(await state()).slice(0, 600)));
  // a second prompt while it runs
  await page.click("#add");
  const rows = await page.$$(".prompt");
  await rows[1].$eval(".text", (e) => { e.value = "a dog"; });
  await rows[1].$eval(".neg", (e) => { e.checked = true; });
  await rows[1].$eval(".ens", (e) => { e.checked = true; });
  await page.click("#apply");
  await page.waitForFunction(() => document.querySelectorAll('.stream[data-input="0"] .bar').length === 2, null, { timeout: 10000 })
    .catch(() => {});
  const s2 = await state();
  check("Apply changes the prompts while it runs", s2.running && s2.prompts.length === 2 && s2.prompts[1].negative &&
        s2.prompts[1].ensemble, JSON.stringify(s2.prompts));
  check("the new prompt has its bar", (await page.$$('.stream[data-input="0"] .bar')).length === 2);
  // the threshold slider
  await page.$eval("#threshold", (e) => { e.value = "0.6"; e.dispatchEvent(new Event("input")); e.dispatchEvent(new Event("change")); });
  await page.waitForFunction(() => /threshold 0.6/.test(document.getElementById("status").textContent), null, { timeout: 10000 })
    .catch(() => {});
  check("the threshold slider sets the server's threshold", Math.abs((await state()).threshold - 0.6) < 1e-9);
  await page.screenshot({ path: outdir + "/serve-page-watch.png" });
  await page.click("#stop");
  await page.waitForFunction(() => /Not watching/.test(document.getElementById("status").textContent), null, { timeout: 10000 })
    .catch(() => {});
  check("Stop stops it", (await state()).running === false);
  // the most relevant input in front: a watch of two inputs, then a fresh page
  const two = await (await fetch(url + "/v1/watch", { method: "POST", headers: { "Content-Type": "application/json" },
    body: JSON.stringify({ inputs: [process.argv[5], process.argv[5]], prompts: ["a cat"], threshold: -1, dwell: 0 }) })).json();
  check("a watch of two inputs starts", two.running && two.inputs.length === 2, JSON.stringify(two).slice(0, 200));
  let focus = null;
  for (let i = 0; i < 100 && focus === null; i++) { await new Promise((r) => setTimeout(r, 100)); focus = (await state()).focus; }
  await page.reload();
  await page.waitForFunction(() => document.querySelectorAll(".stream").length === 2);
  const boxes = await page.$$eval(".stream", (cs) => cs.map((c) => ({ i: +c.dataset.input, focus: c.classList.contains("focus"),
    top: c.getBoundingClientRect().top, left: c.getBoundingClientRect().left, w: c.getBoundingClientRect().width })));
  const f = boxes.find((b) => b.focus), o = boxes.find((b) => !b.focus);
  check("the focused input's card is in front (first, full width)", focus !== null && f && f.i === focus && o &&
        f.top < o.top && f.w > o.w, JSON.stringify({ focus, boxes }));
  await fetch(url + "/v1/watch", { method: "DELETE" });
  check("no script errors", errors.length === 0, errors.join("; "));
} catch (e) {
  check("no exception", false, e.message);
} finally {
  await browser.close();
}
console.log(`watch page: ${check.passed} passed, ${check.failed} failed`);
process.exit(check.failed ? 1 : 0);
