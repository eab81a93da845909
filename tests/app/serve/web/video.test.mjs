// tests/app/serve/web/video.test.mjs - a video hit on the page `clipdex serve`
// serves, in headless Chromium: uploading a slide of the indexed slideshow
// shows the video as a card with its time range (as POST /v1/search gives
// it) and its sample's thumbnail; clicking it plays the video in the card
// from the best moment (the browser fetches it with Range requests).
// Usage: node video.test.mjs URL SLIDE_IMAGE OUTDIR
// Prints one "ok"/"FAIL" line per check and "page: N passed, N failed".
import { readFileSync } from "node:fs";
import { chromium } from "playwright-core";

const [url, image, outdir] = process.argv.slice(2);
let passed = 0, failed = 0;
const check = (name, cond, detail = "") => {
  if (cond) { passed++; console.log("ok " + name); }
  else { failed++; console.log("FAIL " + name + (detail ? ": " + detail : "")); }
};
const clock = (t) => `${Math.floor(t / 60)}:${String(Math.floor(t) % 60).padStart(2, "0")}`;

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
  args: ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--autoplay-policy=no-user-gesture-required"],
});
try {
  const body = { image: { type: "base64", value: readFileSync(image).toString("base64") }, k: 48 };
  const want = (await (await fetch(url + "/v1/search", { method: "POST", body: JSON.stringify(body) })).json()).results;
  const hit = want.find((r) => r.video);
  check("the API gives a video hit", !!hit);
  const page = await browser.newPage({ viewport: { width: 1200, height: 900 } });
  const errors = [];
  page.on("pageerror", (e) => errors.push(String(e)));
  const ranges = [];
  page.on("request", (r) => { if (r.url().includes("/v1/video/")) ranges.push(r.headers()["range"] || ""); });
  await page.goto(url + "/");
  await page.waitForFunction(() => /indexed/.test(document.getElementById("stats").textContent));
  await page.setInputFiles("#file", image);
  await page.waitForFunction(() => /results for/.test(document.getElementById("status").textContent));
  const card = `.result.video[data-id="${hit.id}"]`;
  check("the video is a card", await page.isVisible(card));
  const span = await page.textContent(card + " .span");
  check("its time range as the API's", span === `${clock(hit.start)}–${clock(hit.end)}`, span);
  await page.waitForFunction((c) => { const i = document.querySelector(c + " img"); return i && i.complete && i.naturalWidth > 0; }, card);
  check("its thumbnail loads", true);
  await page.click(card + " a");
  await page.waitForFunction((c) => { const v = document.querySelector(c + " video"); return v && v.readyState >= 2; }, card,
                             { timeout: 30000 });
  const t = await page.$eval(card + " video", (v) => v.currentTime);
  check("it plays from the best moment", t >= hit.best_time - 0.15, `currentTime ${t}, best ${hit.best_time}`);
  check("the browser asked for byte ranges", ranges.some((r) => r.startsWith("bytes=")), ranges.join(" "));
  await page.screenshot({ path: outdir + "/serve-page-video.png" });
  check("no script errors", errors.length === 0, errors.join("; "));
} catch (e) {
  failed++;
  console.log("FAIL exception: " + e.message);
} finally {
  await browser.close();
}
console.log(`page: ${passed} passed, ${failed} failed`);
process.exit(failed ? 1 : 0);
