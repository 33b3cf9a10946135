// The client's own watchJob (compiled: `npm run build`) on a job that has already finished:
// it must resolve at once, and the media URLs in the job must open without the token (as an
// <img src> does). usage: node scripts/watch-finished.mjs BASE_URL TOKEN JOB_ID
import { EnfoadsClient } from "../build/api.js";

const [baseUrl, token, jobId] = process.argv.slice(2);
const client = new EnfoadsClient(baseUrl, token);
const updates = [];
const job = await client.watchJob(jobId, (j) => updates.push(j.state), { timeoutMs: 30_000 });
const urls = [...job.result_urls, ...(job.result.images ?? []).map((i) => i.url)];
const opened = [];
for (const url of urls) {
  const response = await fetch(`${baseUrl}${url}`); // no Authorization header
  opened.push({ url, status: response.status, type: response.headers.get("content-type") });
}
let timedOut = null;
try {
  await client.watchJob("job_doesnotexist", () => {}, { timeoutMs: 5_000 });
} catch (error) {
  timedOut = String(error.message ?? error);
}
console.log(JSON.stringify({ state: job.state, updates, opened, unknown: timedOut }));
process.exit(0);
