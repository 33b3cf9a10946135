// Live check with the React client's own library: start an image job over HTTP, follow its
// job_update events over Socket.IO until it finishes, print them as JSON lines.
// usage: node scripts/watch-job.mjs BASE_URL TOKEN
import { io } from "socket.io-client";

const [baseUrl, token] = process.argv.slice(2);
const headers = { "Content-Type": "application/json", Authorization: `Bearer ${token}` };
const socket = io(baseUrl, { auth: { token }, transports: ["websocket"] });
const timer = setTimeout(() => { console.error("timeout"); process.exit(2); }, 240_000);

socket.on("connect_error", (err) => { console.error("connect_error", err.message); process.exit(3); });
let jobId = null;
const early = [];  // updates that arrive before the POST answers with the job's id
function onUpdate(job) {
  if (jobId === null) { early.push(job); return; }
  if (job.id !== jobId) return;
  console.log(JSON.stringify(job));
  if (["completed", "failed", "cancelled"].includes(job.state)) {
    clearTimeout(timer);
    socket.disconnect();
    process.exit(0);
  }
}
socket.on("job_update", onUpdate);
socket.on("connect", async () => {
  const response = await fetch(`${baseUrl}/generate-image`, {
    method: "POST", headers, body: JSON.stringify({ prompt: "a red sneaker", seed: 2 }),
  });
  jobId = (await response.json()).job_id;
  early.splice(0).forEach(onUpdate);
  const ack = await socket.emitWithAck("join_job", jobId);
  if (!ack.ok) { console.error("join_job refused"); process.exit(4); }
});
