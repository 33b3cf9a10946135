// Live check with the React client's own library: start a job over HTTP, follow its
// job_update events over Socket.IO until it finishes, print them as JSON lines.
// usage: node scripts/watch-job.mjs BASE_URL TOKEN [PATH] [JSON_BODY]
//        (default: POST /generate-image {"prompt": "a red sneaker", "seed": 2})
import { io } from "socket.io-client";

const [baseUrl, token, path = "/generate-image", body = '{"prompt": "a red sneaker", "seed": 2}'] =
  process.argv.slice(2);
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
  const response = await fetch(`${baseUrl}${path}`, { method: "POST", headers, body });
  const answer = await response.json();
  if (!answer.job_id) { console.error("no job", JSON.stringify(answer)); process.exit(5); }
  jobId = answer.job_id;
  early.splice(0).forEach(onUpdate);
  const ack = await socket.emitWithAck("join_job", jobId);
  if (!ack.ok) { console.error("join_job refused"); process.exit(4); }
});
