// Typed client for the Enfoads Studio API: the seed's services/api.ts, with types generated
// from the server's OpenAPI schema (src/schema.d.ts, `npm run generate`).
import { io, type Socket } from "socket.io-client";
import type { components, paths } from "./schema";

export type MagicPromptRequest = components["schemas"]["MagicPromptRequest"];
export type GenerateImageRequest = components["schemas"]["GenerateImageRequest"];
export type TagsRequest = components["schemas"]["TagsRequest"];
export type FaceSwapRequest = components["schemas"]["FaceSwapRequest"];
export type RenderVideoRequest = components["schemas"]["RenderVideoRequest"];
export type RenderMultiSceneRequest = components["schemas"]["RenderMultiSceneRequest"];
export type SpeakRequest = components["schemas"]["SpeakRequest"];
export type BrandKitRequest = components["schemas"]["BrandKitRequest"];
export type BriefRequest = components["schemas"]["BriefRequest"];
export type CopyRequest = components["schemas"]["CopyRequest"];
/** The body of `POST /api/briefs/{brief_id}/results` (the brief is in the path). */
export type ResultsBody = components["schemas"]["ResultsRequestBody"];
/** The answer of every route that queues a job (derived from the job kinds' specs). */
export type QueuedJob = components["schemas"]["QueuedJob"];
/** Every job kind the engine serves, with its request body: `POST /api/jobs/{kind}`. */
type JobRoutes = {
  [P in keyof paths as P extends `/api/jobs/${infer K}`
    ? K extends `${string}/${string}` | `{${string}}` ? never : K
    : never]: paths[P] extends { post: { requestBody?: { content: { "application/json": infer B } } } }
    ? B
    : never;
};
export type JobKind = keyof JobRoutes;
export type SettingsChange = components["schemas"]["SettingsChange"];

export interface BrandKit {
  logo_asset_id: string | null;
  colours: string[];
  font_asset_id: string | null;
  cta: string;
}

export interface ModelRow {
  key: string;
  capability: string;
  model: string;
  licence: string;
  commercial_use: boolean | null;
  size_bytes: number;
  on_disk: boolean;
}

export interface FaceBox {
  index: number;
  box: [number, number, number, number];
  score: number;
}

export interface Licence {
  licence: string;
  commercial_use: boolean;
  notice: string;
  accepted: boolean;
}

/** An image swap answers at once; a video swap (or `run_as_job`) with a job id. */
export interface FaceSwapResult {
  status: string;
  asset_id?: string;
  result_url?: string;
  image_base64?: string;
  faces?: { source: FaceBox[]; target: FaceBox[] };
  similarity?: { index: number; before: number; after: number | null }[];
  job_id?: string;
  licence: Licence;
}

export interface Voice {
  key: string;
  language: string;
  region: string;
  label: string;
  licence: string;
  available: boolean;
}
export type AssetQuery = NonNullable<paths["/api/assets"]["get"]["parameters"]["query"]>;

export type JobState = "queued" | "running" | "completed" | "failed" | "cancelled";

export interface Job {
  id: string;
  kind: string;
  state: JobState;
  status: JobState;
  progress: number;
  stage: string;
  result_asset_ids: string[];
  result_urls: string[];
  result: Record<string, unknown>;
  error: string | null;
  error_code: string | null;
  retry_of: string | null;
  created_at: string;
  images_base64?: string[];
}

export interface Asset {
  id: string;
  kind: string;
  name: string;
  mime: string;
  width: number | null;
  height: number | null;
  url: string;
  thumbnail_url: string | null;
  prompt: string;
  seed: number | null;
  tags: string[];
  meta: Record<string, unknown>;
  /** The asset this one is a file of (a video's voice-over, its subtitles). */
  part_of: string | null;
  created_at: string;
}

export interface AssetPage {
  items: Asset[];
  total: number;
  offset: number;
  limit: number;
  /** With `grouped: true`: each card's own files (a video's WAV, SRT, VTT), by its id. */
  parts?: Record<string, Asset[]>;
}

/** What an assets.json import did. */
export interface ImportReport {
  imported: number;
  skipped: number;
  already_there: number;
  skipped_ids: string[];
  assets: Asset[];
}

/** What a re-index of the vault did (files no asset used, back from their own records). */
export interface ReindexReport {
  recovered: number;
  skipped: number;
  thumbnails: number;
  skipped_reasons: { file: string; reason: string }[];
  assets: Asset[];
}

/** What an ad platform reads of an asset's making: its C2PA manifest, validated. */
export interface Provenance {
  signed: boolean;
  /** trusted: signed by this studio; valid: by another signer; invalid: changed after
   * signing; none: no manifest (an upload). */
  state: "trusted" | "valid" | "invalid" | "none";
  /** IPTC digital source type, e.g. trainedAlgorithmicMedia. */
  source_type: string | null;
  ai_generated: boolean;
  generator: string | null;
  signer: string | null;
  signed_at: string | null;
  actions: { action: string; source_type: string | null; agent: string | null; description: string | null }[];
  ingredients: { title: string; relationship: string; signed: boolean }[];
  problems: string[];
  summary: string;
}

/** One variant of a brief (`render_variants`' result, and the stored brief). */
export interface Variant {
  levels: { concept: number; headline: string; cta: number; palette?: number };
  concept: string;
  headline: string;
  cta: string;
  palette: number;
  /** placement → image asset id */
  files: Record<string, string>;
}

/** `render_variants`' result: the brief's asset id and its variants by ID (`7f3a-1B2`). */
export interface BriefResult {
  brief_id: string;
  seed: number;
  variants: Record<string, Variant>;
}

/** `propose_copy`'s result: headlines and calls to action to edit. */
export interface CopyProposals {
  headlines: string[];
  ctas: string[];
  engine: "rules" | "llm";
  notices: string[];
}

/** `import_results`' result: per variant and factor level, the probability of being best. */
export interface AdResults {
  winner: string | null;
  verdict: string;
  variants: {
    variant: string;
    impressions: number;
    clicks: number;
    conversions: number;
    spend: number;
    ctr: number;
    ctr_interval: [number, number];
    p_best_ctr: number;
    p_best_cvr: number;
  }[];
  factors: Record<string, { level: string; p_best_ctr: number; ctr_interval: [number, number] }[]>;
  skipped_rows: number;
  chart_asset_id: string;
}

export interface ApiErrorBody {
  error: string;
  message: string;
  field: string | null;
}

export class ApiError extends Error {
  constructor(
    readonly status: number,
    readonly body: ApiErrorBody,
  ) {
    super(body.message);
  }
}

const URL_KEY = "enfoads_api_url";
const TOKEN_KEY = "enfoads_api_token";

/** The base URL the user set in Settings (a Colab/ngrok URL changes every session). */
export function storedBaseUrl(fallback = "http://127.0.0.1:5000"): string {
  return (typeof localStorage !== "undefined" && localStorage.getItem(URL_KEY)) || fallback;
}

export function storeConnection(baseUrl: string, token?: string): void {
  localStorage.setItem(URL_KEY, baseUrl.replace(/\/+$/, ""));
  if (token !== undefined) localStorage.setItem(TOKEN_KEY, token);
}

export class EnfoadsClient {
  constructor(
    public baseUrl: string = storedBaseUrl(),
    public token: string | undefined = (typeof localStorage !== "undefined" &&
      localStorage.getItem(TOKEN_KEY)) || undefined,
  ) {
    this.baseUrl = baseUrl.replace(/\/+$/, "");
  }

  private async request<T>(method: string, path: string, body?: unknown): Promise<T> {
    // ngrok answers browsers with a warning page unless this header is present.
    const headers: Record<string, string> = { "ngrok-skip-browser-warning": "1" };
    if (this.token) headers.Authorization = `Bearer ${this.token}`;
    const form = typeof FormData !== "undefined" && body instanceof FormData;
    if (body !== undefined && !form) headers["Content-Type"] = "application/json";
    const response = await fetch(this.baseUrl + path, {
      method,
      headers,
      body: body === undefined ? undefined : form ? (body as FormData) : JSON.stringify(body),
    });
    if (response.status === 204) return undefined as T;
    const data = await response.json();
    if (!response.ok) throw new ApiError(response.status, data as ApiErrorBody);
    return data as T;
  }

  /** A URL usable in <img src> for an asset's `url` or `thumbnail_url`: the server signs
   * them for a few minutes (never the bearer token in a URL); list the assets again for fresh
   * ones. */
  fileUrl(signedPath: string): string {
    return this.baseUrl + signedPath;
  }

  health() {
    return this.request<{ status: string; version: string; uptime_s: number; device: string }>(
      "GET",
      "/",
    );
  }

  gpuStatus() {
    return this.request<Record<string, unknown>>("GET", "/gpu-status");
  }

  magicPrompt(body: MagicPromptRequest) {
    return this.request<{ enhanced_prompt: string; language: string; notices: string[] }>(
      "POST",
      "/magic-prompt",
      body,
    );
  }

  generateImage(body: GenerateImageRequest) {
    return this.request<QueuedJob>("POST", "/generate-image", body);
  }

  /** Queue a job of any kind the engine declares (a plugin's too), its body typed by the
   * kind's request model in the schema. */
  queueJob<K extends JobKind>(kind: K, body: JobRoutes[K]) {
    return this.request<QueuedJob>("POST", `/api/jobs/${encodeURIComponent(kind)}`, body);
  }

  /** A brief → every variant at every placement (a job; its result is a `BriefResult`). */
  createBrief(body: BriefRequest) {
    return this.request<QueuedJob>("POST", "/api/briefs", body);
  }

  /** A platform's per-ad CSV for a brief → the winner (a job; its result is `AdResults`). */
  importResults(briefId: string, body: ResultsBody) {
    return this.request<QueuedJob>(
      "POST",
      `/api/briefs/${encodeURIComponent(briefId)}/results`,
      body,
    );
  }

  /** Headlines and calls to action to edit (a job; its result is `CopyProposals`). */
  proposeCopy(body: CopyRequest) {
    return this.request<QueuedJob>("POST", "/api/jobs/propose_copy", body);
  }

  faceSwap(body: FaceSwapRequest) {
    return this.request<FaceSwapResult>("POST", "/face-swap", body);
  }

  detectFaces(body: { asset_id?: string; image?: string }) {
    return this.request<{ faces: FaceBox[]; width: number; height: number }>(
      "POST",
      "/detect-faces",
      body,
    );
  }

  faceSwapLicence() {
    return this.request<Licence>("GET", "/face-swap/licence");
  }

  /** Script + avatar → a talking-avatar MP4 (a job: follow it with `watchJob`). */
  renderVideo(body: RenderVideoRequest) {
    return this.request<QueuedJob>("POST", "/render-video", body);
  }

  renderMultiScene(body: RenderMultiSceneRequest) {
    return this.request<QueuedJob>("POST", "/render-multi-scene", body);
  }

  avatars(offset = 0, limit = 50) {
    return this.request<{ avatars: Asset[]; total: number }>(
      "GET",
      `/avatars?offset=${offset}&limit=${limit}`,
    );
  }

  useAsAvatar(id: string) {
    return this.request<Asset>("POST", `/api/assets/${encodeURIComponent(id)}/avatar`);
  }

  voices() {
    return this.request<{ voices: Voice[]; default: string }>("GET", "/voices");
  }

  speak(body: SpeakRequest) {
    return this.request<{ asset_id: string; url: string; duration_s: number; voice: string }>(
      "POST",
      "/speak",
      body,
    );
  }

  getJob(id: string, inline = false) {
    return this.request<Job>("GET", `/api/jobs/${encodeURIComponent(id)}${inline ? "?inline=true" : ""}`);
  }

  listJobs() {
    return this.request<Job[]>("GET", "/api/jobs");
  }

  cancelJob(id: string) {
    return this.request<Job>("POST", `/api/jobs/${encodeURIComponent(id)}/cancel`);
  }

  retryJob(id: string) {
    return this.request<Job>("POST", `/api/jobs/${encodeURIComponent(id)}/retry`);
  }

  listAssets(query: AssetQuery = {}) {
    const params = new URLSearchParams();
    for (const [key, value] of Object.entries(query)) {
      if (value !== undefined && value !== null) params.set(key, String(value));
    }
    return this.request<AssetPage>("GET", `/api/assets?${params}`);
  }

  /** Upload as base64 (a data: URL works too), as the seed's client does. */
  uploadAsset(data: string, name: string, kind?: string, tags: string[] = []) {
    return this.request<Asset>("POST", "/api/assets", { data, name, kind, tags });
  }

  getAsset(id: string) {
    return this.request<Asset>("GET", `/api/assets/${encodeURIComponent(id)}`);
  }

  tagAsset(id: string, body: TagsRequest) {
    return this.request<Asset>("POST", `/api/assets/${encodeURIComponent(id)}/tags`, body);
  }

  /** The brand kit's logo or font answers 409 `asset_in_kit` unless `confirm` is true;
   * then the kit drops it too. A video goes with its voice-over and subtitles. */
  deleteAsset(id: string, confirm = false) {
    const query = confirm ? "?confirm=true" : "";
    return this.request<void>("DELETE", `/api/assets/${encodeURIComponent(id)}${query}`);
  }

  /** Import the seed backend's assets.json (entries with inline data: URLs). */
  importAssets(file: Blob, name = "assets.json") {
    const form = new FormData();
    form.append("file", file, name);
    return this.request<ImportReport>("POST", "/api/assets/import", form);
  }

  /** Bring stored files that no asset uses back into the vault (a lost or replaced
   * database), each from the record the studio wrote into it. */
  reindexAssets() {
    return this.request<ReindexReport>("POST", "/api/assets/reindex");
  }

  /** The asset's Content Credentials (C2PA), as a platform will read them. */
  assetProvenance(id: string) {
    return this.request<Provenance>("GET", `/api/assets/${encodeURIComponent(id)}/provenance`);
  }

  brandKit() {
    return this.request<BrandKit>("GET", "/api/brand-kit");
  }

  /** Save the brand kit; fields left out keep their saved value. */
  saveBrandKit(body: BrandKitRequest) {
    return this.request<BrandKit>("PUT", "/api/brand-kit", body);
  }

  models() {
    return this.request<{ models: ModelRow[] }>("GET", "/api/models");
  }

  /** Download one model into the studio's data dir (a job). */
  prepareModel(key: string) {
    return this.request<{ job_id: string; status: JobState; job: Job }>(
      "POST",
      `/api/models/${encodeURIComponent(key)}/prepare`,
    );
  }

  settings() {
    return this.request<{ language: "es" | "en"; faceswap_licence_accepted: boolean }>(
      "GET",
      "/api/settings",
    );
  }

  updateSettings(body: SettingsChange) {
    return this.request<{ language: "es" | "en"; faceswap_licence_accepted: boolean }>(
      "PATCH",
      "/api/settings",
      body,
    );
  }

  /** Socket.IO with the token on the handshake; `job_update` events carry a Job. */
  socket(): Socket {
    return io(this.baseUrl, {
      auth: this.token ? { token: this.token } : undefined,
      extraHeaders: { "ngrok-skip-browser-warning": "1" }, // the long-polling requests
    });
  }

  /** Resolve when the job finishes, calling `onUpdate` for each progress event. The job's
   * record is read on every (re)connect, so a job that finished before the call, or while the
   * connection was down, still resolves; `timeoutMs` (0: none) rejects a job that never
   * finishes in time. Rejects when the server refuses the connection for good. */
  watchJob(
    jobId: string,
    onUpdate: (job: Job) => void = () => {},
    { timeoutMs = 0 }: { timeoutMs?: number } = {},
  ): Promise<Job> {
    const socket = this.socket();
    return new Promise((resolve, reject) => {
      let settled = false;
      const finish = (job: Job | null, error?: unknown) => {
        if (settled) return;
        settled = true;
        if (timer !== undefined) clearTimeout(timer);
        socket.disconnect();
        if (job) resolve(job);
        else reject(error);
      };
      const timer =
        timeoutMs > 0
          ? setTimeout(
              () => finish(null, new Error(`job ${jobId} did not finish in ${timeoutMs} ms`)),
              timeoutMs,
            )
          : undefined;
      const consider = (job: Job) => {
        if (settled || job.id !== jobId) return;
        onUpdate(job);
        if (FINISHED.includes(job.state)) finish(job);
      };
      socket.on("job_update", consider);
      socket.on("connect", () => {
        socket.emit("join_job", jobId);
        this.getJob(jobId).then(consider, (error) => finish(null, error));
      });
      socket.on("connect_error", (error) => {
        if (!socket.active) finish(null, error); // refused (a bad token): no retry coming
      });
    });
  }
}

const FINISHED: JobState[] = ["completed", "failed", "cancelled"];
