// tests/app/serve/web/browser.mjs - what the page tests share: headless
// Chromium (Debian's /usr/bin/chromium, or $CHROMIUM, through
// playwright-core) and the "ok"/"FAIL" check lines they print.
import { chromium } from "playwright-core";

export function launch() {
  return chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--headless", "--no-sandbox", "--disable-gpu", "--no-first-run", "--disable-background-networking",
           "--disable-component-update", "--disable-sync"],
  });
}

// checker() -> check(name, cond, detail); check.passed and check.failed count them
export function checker() {
  const check = (name, cond, detail = "") => {
    if (cond) { check.passed++; console.log("ok " + name); }
    else { check.failed++; console.log("FAIL " + name + (detail ? ": " + detail : "")); }
  };
  check.passed = 0;
  check.failed = 0;
  return check;
}
