// tests/app/serve/web/page.test.mjs - drives the page `clipdex serve` serves in
// headless Chromium (Debian's /usr/bin/chromium through playwright-core):
// types a query and checks the grid ranks as POST /v1/search does, clicks
// "more like this" (image-to-image), searches by uploading an image, checks
// the random-weights notice and the phone-sized layout, and keeps
// screenshots. Usage: node page.test.mjs URL IMAGE OUTDIR
// Prints one "ok"/"FAIL" line per check and "page: N passed, N failed".
import { chromium } from "playwright-core";

const [url, image, outdir] = process.argv.slice(2);
let passed = 0, failed = 0;
const check = (name, cond, detail = "") => {
  if (cond) { passed++; console.log("ok " + name); }
  else { failed++; console.log("FAIL " + name + (detail ? ": " + detail : "")); }
};

async function api(path, body) {
  const r = await fetch(url + path, { method: "POST", body: JSON.stringify(body) });
  return r.json();
}
async function gridIds(page) {
  return page.$$eval(".result", (els) => els.map((e) => Number(e.dataset.id)));
}

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync"],
});
try {
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  await page.goto(url + "/");
  await page.waitForFunction(() => /indexed/.test(document.getElementById("stats").textContent));
  check("stats show the index size", /\d+ images? indexed/.test(await page.textContent("#stats")));
  check("random test weights notice is shown", await page.isVisible("#random"));
  check("no empty-index notice", !(await page.isVisible("#empty")));

  // type a query: live results, ranked as the API ranks them
  await page.fill("#q", "a horse");
  await page.waitForFunction(() => /results for/.test(document.getElementById("status").textContent));
  const ids = await gridIds(page);
  const want = (await api("/v1/search", { text: "a horse", k: 48 })).results.map((r) => r.id);
  check("text query shows results", ids.length > 0);
  check("grid ranks as POST /v1/search", JSON.stringify(ids) === JSON.stringify(want),
        `page ${ids} api ${want}`);
  const sims = await page.$$eval(".result", (els) => els.map((e) => Number(e.dataset.similarity)));
  check("similarities descend", sims.every((s, i) => i === 0 || sims[i - 1] >= s));
  await page.waitForFunction(() => [...document.querySelectorAll(".result img")].every((i) => i.complete && i.naturalWidth > 0));
  check("thumbnails load", true);
  await page.screenshot({ path: outdir + "/serve-page-text.png", fullPage: true });

  // "more like this" on the third result
  const target = ids[Math.min(2, ids.length - 1)];
  await page.click(`.result[data-id="${target}"] .more`);
  await page.waitForFunction((t) => document.getElementById("status").textContent.includes("#" + t), target);
  const more = await gridIds(page);
  const wantMore = (await api("/v1/search", { id: target, k: 48 })).results.map((r) => r.id);
  check("more like this: the image itself first", more[0] === target, `first ${more[0]}`);
  check("more like this ranks as the API", JSON.stringify(more) === JSON.stringify(wantMore));

  // upload an image
  await page.setInputFiles("#file", image);
  await page.waitForFunction(() => /results for .*\.(png|jpe?g)/i.test(document.getElementById("status").textContent));
  const up = await page.$$eval(".result", (els) => els.map((e) => Number(e.dataset.similarity)));
  check("upload: the same image is found first (similarity 1)", up.length > 0 && Math.abs(up[0] - 1) < 1e-3, `${up[0]}`);

  // phone-sized screen: two columns, no horizontal scrolling
  await page.setViewportSize({ width: 390, height: 844 });
  await page.fill("#q", "a horse");
  await page.waitForFunction(() => /“a horse”/.test(document.getElementById("status").textContent));
  const overflow = await page.evaluate(() => document.documentElement.scrollWidth > window.innerWidth);
  check("phone: no horizontal overflow", !overflow);
  const cols = await page.$$eval(".result", (els) => new Set(els.slice(0, 4).map((e) => e.getBoundingClientRect().left)).size);
  check("phone: two columns", cols === 2, `${cols}`);
  await page.screenshot({ path: outdir + "/serve-page-phone.png" });
  check("no script errors", errors.length === 0, errors.join("; "));
} catch (e) {
  failed++;
  console.log("FAIL exception: " + e.message);
} finally {
  await browser.close();
}
console.log(`page: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
