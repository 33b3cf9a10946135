"""The one catalogue of user-facing text, Spanish first, English second.

Log lines and code stay in English; everything a user reads comes from here through ``t()``.
"""

from __future__ import annotations

from collections.abc import Callable

LANGUAGES = ("es", "en")

# A text per language, or per plural form: {"es": {"one": "…", "other": "…"}, "en": …}.
CATALOG: dict[str, dict[str, str | dict[str, str]]] = {
    # errors
    "error.empty": {
        "es": "El campo '{field}' está vacío.",
        "en": "The field '{field}' is empty.",
    },
    "error.too_long": {
        "es": "El campo '{field}' es demasiado largo: {length} caracteres (máximo {limit}).",
        "en": "The field '{field}' is too long: {length} characters (limit {limit}).",
    },
    "error.video_too_long": {
        "es": "El vídeo '{name}' dura {seconds} s; el cambio de cara admite hasta {limit} s. Recórtalo o sube ENFOADS_MAX_SWAP_VIDEO_S.",
        "en": "The video '{name}' lasts {seconds} s; face swap takes up to {limit} s. Trim it or raise ENFOADS_MAX_SWAP_VIDEO_S.",
    },
    "error.out_of_range": {
        "es": "El campo '{field}' vale {value}; debe estar entre {low} y {high}.",
        "en": "The field '{field}' is {value}; it must be between {low} and {high}.",
    },
    "error.not_multiple": {
        "es": "El campo '{field}' vale {value}; debe ser múltiplo de {step}.",
        "en": "The field '{field}' is {value}; it must be a multiple of {step}.",
    },
    "error.unknown_choice": {
        "es": "El campo '{field}' no admite '{value}'. Opciones: {choices}.",
        "en": "The field '{field}' does not accept '{value}'. Choices: {choices}.",
    },
    "error.invalid": {
        "es": "El campo '{field}' no es válido: {reason}.",
        "en": "The field '{field}' is not valid: {reason}.",
    },
    "error.not_found": {
        "es": "No existe {what} con id '{id}'.",
        "en": "There is no {what} with id '{id}'.",  # NotFound translates {what}
    },
    "error.no_route": {
        "es": "No hay ningún servicio en {method} {path}.",
        "en": "There is no endpoint at {method} {path}.",
    },
    "error.file_too_large": {
        "es": "El archivo '{name}' pesa {size_mb:.1f} MB; el máximo es {limit_mb:.1f} MB.",
        "en": "The file '{name}' is {size_mb:.1f} MB; the limit is {limit_mb:.1f} MB.",
    },
    "error.too_many_pixels": {
        "es": "La imagen '{name}' tiene {pixels} píxeles; el máximo es {limit}.",
        "en": "The image '{name}' has {pixels} pixels; the limit is {limit}.",
    },
    "error.corrupt_image": {
        "es": "El archivo '{name}' no es una imagen legible ({reason}).",
        "en": "The file '{name}' is not a readable image ({reason}).",
    },
    "error.corrupt_font": {
        "es": "El archivo '{name}' no es una fuente TrueType/OpenType legible ({reason}).",
        "en": "The file '{name}' is not a readable TrueType/OpenType font ({reason}).",
    },
    "error.too_many_entries": {
        "es": "El archivo '{field}' trae {n} entradas; se importan como máximo {limit} cada vez. Divídelo en partes: lo ya importado no se repite.",
        "en": "The file '{field}' has {n} entries; at most {limit} are imported at a time. Split it: what is already imported is not repeated.",
    },
    "error.clip_too_long": {
        "es": "El clip '{name}' dura {seconds} s y una escena admite hasta {limit:.0f} s: indica la duración de la escena para usar solo su principio.",
        "en": "The clip '{name}' lasts {seconds} s and a scene takes up to {limit:.0f} s: set the scene's length to use only its beginning.",
    },
    "error.ad_too_long": {
        "es": "El anuncio duraría {seconds} s; el máximo es {limit:.0f} s. Acorta los guiones o las escenas.",
        "en": "The ad would last {seconds} s; the limit is {limit:.0f} s. Shorten the scripts or the scenes.",
    },
    "error.video_too_many_pixels": {
        "es": "El vídeo '{name}' mide {width}×{height}; el máximo es 4K (3840×2160) a 60 fps.",
        "en": "The video '{name}' is {width}×{height}; the limit is 4K (3840×2160) at 60 fps.",
    },
    "error.unsafe_folder": {
        "es": "La carpeta temporal '{name}' no es solo tuya (la creó otro usuario, o es un enlace): el estudio no la usa. Bórrala, o elige otra carpeta temporal con TMPDIR.",
        "en": "The temporary folder '{name}' is not yours alone (another user made it, or it is a link): the studio does not use it. Delete it, or choose another temporary folder with TMPDIR.",
    },
    "error.unsafe_path": {
        "es": "La ruta '{path}' queda fuera de la carpeta de datos.",
        "en": "The path '{path}' lies outside the data folder.",
    },
    "error.model_unavailable": {
        "es": "No se pudo cargar el modelo '{model}': {reason}",
        "en": "The model '{model}' could not be loaded: {reason}",
    },
    "error.model_not_downloaded": {
        "es": "El modelo '{model}' no está descargado y ahora no se puede descargar (no hay conexión con Hugging Face). Descárgalo en Ajustes cuando tengas conexión.",
        "en": "The model '{model}' is not downloaded and cannot be downloaded now (Hugging Face cannot be reached). Download it in Settings when you are online.",
    },
    "error.voice_not_downloaded": {
        "es": "La voz '{voice}' no está descargada y ahora no se puede descargar (no hay conexión). Descárgala en Ajustes cuando tengas conexión, o elige una voz que ya esté: {voices}.",
        "en": "The voice '{voice}' is not downloaded and cannot be downloaded now (no connection). Download it in Settings when you are online, or choose a voice that is there: {voices}.",
    },
    "error.job_timeout": {
        "es": "El trabajo superó su tiempo máximo ({limit}) y se detuvo; la GPU queda libre. Prueba con menos formatos o imágenes, o un vídeo más corto.",
        "en": "The job ran past its time limit ({limit}) and was stopped; the GPU is free again. Try fewer placements or images, or a shorter video.",
    },
    "error.model_too_large": {
        "es": "El modelo '{model}' ({size_gb:.1f} GB) no cabe en el presupuesto de {where} "
        "({budget_gb:.1f} GB).",
        "en": "The model '{model}' ({size_gb:.1f} GB) does not fit the {where} budget "
        "({budget_gb:.1f} GB).",
    },
    "error.job_state": {
        "es": "El trabajo '{id}' está en estado '{state}' y no se puede {action}.",
        "en": "The job '{id}' is '{state}' and cannot be {action}.",
    },
    "error.no_face": {
        "es": "No se encontró ninguna cara en {field_label} ('{name}').",
        "en": "No face was found in {field_label} ('{name}').",
    },
    "error.face_index": {
        "es": "El campo '{field}' pide la cara {index}, pero hay {count} (de 0 a {last}, "
        "de izquierda a derecha).",
        "en": "The field '{field}' asks for face {index}, but there are {count} (0 to {last}, "
        "left to right).",
    },
    "error.too_many": {
        "es": "El campo '{field}' tiene {count} elementos; el máximo es {limit}.",
        "en": "The field '{field}' has {count} items; the limit is {limit}.",
    },
    "error.voice_language": {
        "es": "La voz '{voice}' no habla el idioma '{language}'.",
        "en": "The voice '{voice}' does not speak '{language}'.",
    },
    "error.silent_audio": {
        "es": "El audio de '{field}' está vacío o en silencio.",
        "en": "The audio of '{field}' is empty or silent.",
    },
    "error.internal": {
        "es": "Error interno en '{kind}': {reason}",
        "en": "Internal error in '{kind}': {reason}",
    },
    "error.bad_character": {
        "es": "El campo '{field}' contiene un carácter no permitido ({char}, posición {position}).",
        "en": "The field '{field}' holds a character that is not allowed ({char}, position {position}).",
    },
    "error.too_deep": {
        "es": "El campo '{field}' está anidado demasiado (máximo {limit} niveles).",
        "en": "The field '{field}' is nested too deeply (at most {limit} levels).",
    },
    "error.not_finite": {
        "es": "El campo '{field}' debe ser un número finito.",
        "en": "The field '{field}' must be a finite number.",
    },
    "error.asset_in_kit": {
        "es": "'{name}' es {role} de tu kit de marca: confirma para quitarlo del kit y borrarlo.",
        "en": "'{name}' is your brand kit's {role}: confirm to remove it from the kit and delete it.",
    },
    "error.highlight_contrast": {
        "es": "El color de resaltado ({highlight}) apenas se distingue del color del texto ({colour}): elige uno más distinto.",
        "en": "The highlight colour ({highlight}) can hardly be told from the text colour ({colour}): choose a more different one.",
    },
    "error.reserved_kind": {
        "es": "Los recursos de tipo '{kind}' los gestiona el estudio: no se pueden subir, etiquetar ni borrar desde aquí.",
        "en": "'{kind}' assets are managed by the studio: they cannot be uploaded, tagged or deleted from here.",
    },
    "error.kind_mismatch": {
        "es": "Un archivo .{ext} no puede ser un recurso de tipo '{kind}'.",
        "en": "A .{ext} file cannot be a '{kind}' asset.",
    },
    "error.corrupt_video": {
        "es": "El vídeo '{name}' está dañado o no se puede leer.",
        "en": "The video '{name}' is damaged or cannot be read.",
    },
    "error.gpu_memory": {
        "es": "La GPU se quedó sin memoria para este trabajo. Pide menos imágenes por formato o espera a que termine otro trabajo, y vuelve a intentarlo.",
        "en": "The GPU ran out of memory for this job. Ask for fewer images per format or wait for another job to finish, and try again.",
    },
    "error.disk_full": {
        "es": "No queda espacio en el disco de datos; libera espacio (borra recursos) y vuelve a intentarlo.",
        "en": "The data disk is full; free some space (delete assets) and try again.",
    },
    "error.storage_unavailable": {
        "es": "El almacén de archivos (bucket «{bucket}») no responde o lo rechaza ({reason}); no se guardó ni cambió nada. Revisa ENFOADS_S3_ENDPOINT_URL, el bucket y sus claves, y vuelve a intentarlo.",
        "en": "The file storage (bucket '{bucket}') did not answer or refused ({reason}); nothing was stored or changed. Check ENFOADS_S3_ENDPOINT_URL, the bucket and its keys, and try again.",
    },
    "error.unauthorized": {
        "es": "Hace falta un token válido (Authorization: Bearer <token>).",
        "en": "A valid bearer token is required (Authorization: Bearer <token>).",
    },
    "error.media_link_expired": {
        "es": "Este enlace al archivo ha caducado; pide la lista de recursos otra vez para tener uno nuevo.",
        "en": "This link to the file has expired; list the assets again to get a fresh one.",
    },
    "error.media_link_bad": {
        "es": "Este enlace al archivo no es válido (firma incorrecta o de otro recurso).",
        "en": "This link to the file is not valid (wrong signature, or one for another asset).",
    },
    "error.tunnel_no_cloudflared": {
        "es": "No se encuentra cloudflared: instala 'pycloudflared' (lo descarga) o indica su ruta con ENFOADS_CLOUDFLARED_PATH.",
        "en": "cloudflared was not found: install 'pycloudflared' (it downloads it) or give its path in ENFOADS_CLOUDFLARED_PATH.",
    },
    "error.tunnel_failed": {
        "es": "No se pudo abrir el túnel público (cloudflared no dio una URL). Revisa la conexión y vuelve a intentarlo.",
        "en": "The public tunnel could not be opened (cloudflared gave no URL). Check the connection and try again.",
    },
    "error.tunnel_no_pyngrok": {
        "es": "Para usar ngrok instala 'pyngrok', o usa el túnel de Cloudflare (sin cuenta).",
        "en": "To use ngrok install 'pyngrok', or use the Cloudflare tunnel (no account needed).",
    },
    "error.tunnel_no_ngrok_token": {
        "es": "ngrok necesita un token de cuenta (NGROK_AUTHTOKEN); el túnel de Cloudflare no.",
        "en": "ngrok needs an account token (NGROK_AUTHTOKEN); the Cloudflare tunnel does not.",
    },
    "notice.tunnel_policy": {
        "es": "El túnel publica la API del estudio en Internet, protegida con el token. Ábrelo solo mientras trabajas: las normas de Colab prohíben ofrecer servicios web ajenos a tu trabajo interactivo.",
        "en": "The tunnel puts the studio's API on the Internet, guarded by the token. Open it only while you work: Colab's rules forbid offering web services unrelated to your interactive work.",
    },
    "error.rate_limited": {
        "es": "Demasiadas peticiones: como máximo {limit} por minuto. Vuelve a intentarlo en {retry_after} s.",
        "en": "Too many requests: at most {limit} per minute. Try again in {retry_after} s.",
    },
    "error.body_too_large": {
        "es": "La petición pesa más de {limit_mb:.1f} MB, el máximo para esta ruta.",
        "en": "The request is over {limit_mb:.1f} MB, the limit for this route.",
    },
    "error.bad_json": {
        "es": "El cuerpo de la petición no es JSON válido.",
        "en": "The request body is not valid JSON.",
    },
    "error.unsupported_media_type": {
        "es": "Envía multipart/form-data con un campo 'file', o JSON con 'data' en base64.",
        "en": "Send multipart/form-data with a 'file' field, or JSON with base64 'data'.",
    },
    "error.invalid_setting": {
        "es": "El ajuste '{field}' ({variable} o settings.json) no es válido: {reason}.",
        "en": "The setting '{field}' ({variable} or settings.json) is not valid: {reason}.",
    },
    "error.settings_file_json": {
        "es": "El archivo de ajustes {path} no es JSON válido.",
        "en": "The settings file {path} is not valid JSON.",
    },
    "error.settings_file_object": {
        "es": "El archivo de ajustes {path} debe contener un objeto JSON ({{...}}).",
        "en": "The settings file {path} must hold a JSON object ({{...}}).",
    },
    "error.settings_file_unknown": {
        "es": "El archivo de ajustes {path} tiene ajustes desconocidos: {names}.",
        "en": "The settings file {path} has unknown settings: {names}.",
    },
    "error.invalid_field": {
        "es": "El campo '{field}' no es válido: {reason}.",
        "en": "The field '{field}' is not valid: {reason}.",
    },
    "error.cross_site": {
        "es": "Petición rechazada: viene de otra web. Añade su origen a ENFOADS_CORS_ORIGINS si es tu cliente.",
        "en": "Request refused: it comes from another website. Add its origin to ENFOADS_CORS_ORIGINS if it is your client.",
    },
    "error.internal_http": {
        "es": "Error interno del servidor; sigue funcionando. Consulta el registro del servidor.",
        "en": "Internal server error; the server keeps running. See the server log.",
    },
    "error.no_thumbnail": {
        "es": "El recurso '{id}' no tiene miniatura.",
        "en": "The asset '{id}' has no thumbnail.",
    },
    "error.licence_not_accepted": {
        "es": "El cambio de cara está desactivado hasta que aceptes el aviso de licencia: {notice} Acéptalo en el panel Cambio de cara (o con PATCH /api/settings y faceswap_licence_accepted=true).",
        "en": "Face swap is off until you accept the licence notice: {notice} Accept it in the Face Swap panel (or with PATCH /api/settings and faceswap_licence_accepted=true).",
    },
    "error.engine_busy": {
        "es": "Ya hay un motor del estudio usando esta carpeta de datos ({engine}). Conéctate a él (enfoads.connect()) o detenlo antes de abrir otro.",
        "en": "A studio engine already uses this data folder ({engine}). Attach to it (enfoads.connect()) or stop it before starting another.",
    },
    "error.engine_elsewhere": {
        "es": "Otra sesión del estudio usa esta carpeta de datos ({engine}), quizá otro entorno de Colab con el mismo Drive. Ciérrala allí y vuelve a intentarlo; si ya no existe, su turno caduca el {until} UTC y entonces podrás abrirla aquí.",
        "en": "Another studio session uses this data folder ({engine}), perhaps another Colab runtime on the same Drive. Close it there and try again; if it is gone, its lease ends on {until} UTC and then you can open it here.",
    },
    "error.engine_fenced": {
        "es": "Este estudio perdió su turno sobre la carpeta de datos (otra sesión lo tomó mientras estaba parado): no guarda nada más hasta recuperarlo. Cierra esta sesión y usa la otra.",
        "en": "This studio lost its lease on the data folder (another session took it while this one was paused): it stores nothing more until it gets it back. Close this session and use the other one.",
    },
    "error.engine_unreachable": {
        "es": "El motor del estudio de esta carpeta de datos ({engine}) no responde: {reason}. Espera unos segundos o reinícialo.",
        "en": "The studio engine of this data folder ({engine}) does not answer: {reason}. Wait a few seconds or restart it.",
    },
    "error.cancelled": {"es": "Cancelado por el usuario.", "en": "Cancelled by the user."},
    "error.interrupted": {
        "es": "Interrumpido: el proceso se detuvo mientras se ejecutaba.",
        "en": "Interrupted: the process stopped while it was running.",
    },
    # job stages
    "stage.queued": {"es": "En cola", "en": "Queued"},
    "stage.loading_model": {"es": "Cargando el modelo", "en": "Loading the model"},
    "stage.generating": {
        "es": "Generando {placement} ({step}/{steps})",
        "en": "Generating {placement} ({step}/{steps})",
    },
    "stage.generating_eager": {
        "es": "Generando {placement} ({step}/{steps}) · optimizando en segundo plano para la próxima vez",
        "en": "Generating {placement} ({step}/{steps}) · optimizing in the background for next time",
    },
    "stage.swapping_frame": {
        "es": "Cambiando caras: fotograma {frame}/{total}",
        "en": "Swapping faces: frame {frame}/{total}",
    },
    "stage.voice": {"es": "Generando la voz", "en": "Generating the voice"},
    "stage.animating": {"es": "Animando la cara", "en": "Animating the face"},
    "stage.subtitles": {"es": "Generando subtítulos", "en": "Generating subtitles"},
    "stage.rendering": {
        "es": "Componiendo el vídeo: fotograma {frame}/{total}",
        "en": "Rendering the video: frame {frame}/{total}",
    },
    "stage.downloading": {"es": "Descargando {model}", "en": "Downloading {model}"},
    "stage.downloading_size": {
        "es": "Descargando {model}: {done} de ~{total} (solo la primera vez)",
        "en": "Downloading {model}: {done} of ~{total} (first time only)",
    },
    "stage.magic_prompt": {
        "es": "Preparando el prompt de cada formato",
        "en": "Writing the prompt for each placement",
    },
    "stage.worker_lost": {
        "es": "El trabajador que lo ejecutaba dejó de responder; otro lo retoma en cuanto quede libre",
        "en": "The worker running it stopped answering; another takes it over as soon as one is free",
    },
    "stage.saving": {"es": "Guardando", "en": "Saving"},
    "stage.completed": {"es": "Completado", "en": "Completed"},
    # notices
    "notice.negative_prompt_ignored": {
        "es": "El prompt negativo no tiene efecto con SDXL-Lightning (guidance 0); se ignoró.",
        "en": "The negative prompt has no effect with SDXL-Lightning (guidance 0); it was ignored.",
    },
    "notice.llm_fallback": {
        "es": "El modelo de lenguaje '{model}' no está disponible ({reason}); se usaron las "
        "reglas.",
        "en": "The language model '{model}' is not available ({reason}); the rules were used.",
    },
    "notice.spanish_kept": {
        "es": "El prompt está en español y no hay modelo de traducción; SDXL entiende mejor "
        "el inglés.",
        "en": "The prompt is in Spanish and no translation model is set; SDXL understands "
        "English best.",
    },
    "notice.translator_downloading": {
        "es": "El traductor español→inglés (300 MB) se está descargando; mientras tanto el prompt "
        "va en español. Las generaciones lo traducirán en cuanto esté.",
        "en": "The Spanish→English translator (300 MB) is downloading; meanwhile the prompt stays "
        "in Spanish. Generations will translate it as soon as it is there.",
    },
    "notice.translator_offline": {
        "es": "El prompt está en español y el traductor no está descargado (sin conexión ahora); "
        "descárgalo en Ajustes. SDXL entiende mejor el inglés.",
        "en": "The prompt is in Spanish and the translator is not downloaded (no connection now); "
        "download it in Settings. SDXL understands English best.",
    },
    "notice.translation_failed": {
        "es": "No se pudo traducir el prompt ({reason}); va en español.",
        "en": "The prompt could not be translated ({reason}); it stays in Spanish.",
    },
    "notice.prompt_trimmed": {
        "es": "El prompt se ha acortado a los {limit} tokens que lee SDXL: se quitaron los "
        "añadidos menos importantes.",
        "en": "The prompt was shortened to the {limit} tokens SDXL reads: the least important "
        "additions were left out.",
    },
    # nouns inside sentences ("no job 'x'")
    "noun.asset": {"es": "el recurso", "en": "asset"},
    "noun.job": {"es": "el trabajo", "en": "job"},
    "noun.kit_logo": {"es": "el logo", "en": "logo"},
    "noun.kit_font": {"es": "la fuente", "en": "font"},
    "noun.model": {"es": "el modelo", "en": "model"},
    "noun.job kind": {"es": "el tipo de trabajo", "en": "job kind"},
    # field names inside sentences ("in the target image")
    "field.source": {"es": "la imagen de origen", "en": "the source image"},
    "field.target": {"es": "la imagen de destino", "en": "the target image"},
    "field.avatar": {"es": "la foto del avatar", "en": "the avatar photo"},
    "field.image": {"es": "la imagen", "en": "the image"},
    # reasons inside error messages
    "reason.unknown_field": {"es": "campo desconocido", "en": "unknown field"},
    "reason.text_expected": {"es": "se espera un texto", "en": "text expected"},
    "reason.list_expected": {"es": "se espera una lista", "en": "a list expected"},
    "reason.number_expected": {"es": "se espera un número", "en": "a number expected"},
    "reason.bool_expected": {"es": "se espera true o false", "en": "true or false expected"},
    "reason.object_expected": {"es": "se espera un objeto JSON", "en": "a JSON object expected"},
    "reason.missing": {"es": "falta", "en": "missing"},
    "reason.not_json": {"es": "no es JSON", "en": "not JSON"},
    "reason.not_storable": {"es": "no se puede guardar como JSON", "en": "not storable as JSON"},
    "reason.bad_base64": {"es": "base64 mal formado", "en": "malformed base64"},
    "reason.unknown_format": {"es": "formato de archivo desconocido", "en": "unknown file format"},
    "reason.unreadable_file": {
        "es": "no se puede leer el archivo",
        "en": "the file cannot be read",
    },
    "reason.changed_file": {
        "es": "su contenido ya no coincide con su nombre (archivo dañado)",
        "en": "its content no longer matches its name (a damaged file)",
    },
    "reason.unreadable_audio": {"es": "archivo de audio ilegible", "en": "unreadable audio file"},
    "reason.no_streams": {
        "es": "no tiene pista de audio ni de vídeo",
        "en": "no audio or video stream",
    },
    "reason.no_frames": {"es": "el vídeo no tiene fotogramas", "en": "the video has no frames"},
    "reason.named_no_frames": {
        "es": "'{name}' no tiene fotogramas",
        "en": "'{name}' has no frames",
    },
    "reason.wav_16bit": {"es": "se espera un WAV PCM de 16 bits", "en": "16-bit PCM WAV expected"},
    "reason.scenes_list": {"es": "una lista de escenas", "en": "a list of scenes"},
    "reason.fields": {"es": "campos: {fields}", "en": "fields: {fields}"},
    "reason.not_font": {"es": "{id} no es una fuente", "en": "{id} is not a font"},
    "reason.not_video": {"es": "{id} no es un vídeo", "en": "{id} is not a video"},
    "reason.not_image": {"es": "{id} no es una imagen", "en": "{id} is not an image"},
    "reason.kind_mismatch": {
        "es": "{id} es de tipo {have}, no {want}",
        "en": "{id} is a {have}, not a {want} file",
    },
    "reason.not_object": {"es": "no es un objeto JSON", "en": "it is not a JSON object"},
    "reason.not_data_url": {
        "es": "no es un archivo incrustado (data:…;base64,…): rutas y direcciones no se leen",
        "en": "it is not an inline file (data:…;base64,…): paths and addresses are not read",
    },
    "reason.exists": {"es": "{id} ya existe", "en": "{id} already exists"},
    "reason.not_hex": {
        "es": "'{value}' no es un color #RRGGBB",
        "en": "'{value}' is not a #RRGGBB colour",
    },
    "reason.not_tag": {"es": "'{value}' no es una etiqueta", "en": "'{value}' is not a tag"},
    "reason.tag_chars": {
        "es": "solo letras, números, _ y -",
        "en": "letters, digits, _ and - only",
    },
    "reason.even_sides": {
        "es": "{size}: H.264 necesita lados pares",
        "en": "{size}: H.264 needs even sides",
    },
    "reason.not_changeable": {
        "es": "no se puede cambiar con el estudio en marcha",
        "en": "not changeable while the studio runs",
    },
    "reason.unknown_kit_field": {
        "es": "campo del kit de marca desconocido",
        "en": "unknown brand kit field",
    },
    "reason.ids_not_images": {
        "es": "los trabajos usan ids de recursos; sube antes las imágenes",
        "en": "jobs take asset ids; upload the images first",
    },
    "reason.id_or_image": {
        "es": "da un id de recurso o una imagen, no ambos",
        "en": "give an asset id or an image, not both",
    },
    "reason.value": {"es": "valor no válido", "en": "not a valid value"},
    "reason.too_short": {"es": "demasiado corto", "en": "too short"},
    "reason.too_long": {"es": "demasiado largo", "en": "too long"},
    "reason.out_of_range": {"es": "fuera de rango", "en": "out of range"},
    "reason.at_least": {"es": "debe ser como mínimo {limit}", "en": "must be at least {limit}"},
    "reason.at_most": {"es": "debe ser como máximo {limit}", "en": "must be at most {limit}"},
    "reason.above": {"es": "debe ser mayor que {limit}", "en": "must be greater than {limit}"},
    "reason.below": {"es": "debe ser menor que {limit}", "en": "must be less than {limit}"},
    "reason.multiple_of": {
        "es": "debe ser múltiplo de {step}",
        "en": "must be a multiple of {step}",
    },
    "reason.choice": {"es": "debe ser uno de: {choices}", "en": "must be one of: {choices}"},
    "reason.not_a_choice": {
        "es": "«{value}» no es una opción; debe ser uno de: {choices}",
        "en": "'{value}' is not a choice; it must be one of: {choices}",
    },
    "reason.bad_text": {
        "es": "contiene caracteres no permitidos (NUL, control o sustitutos sueltos)",
        "en": "has characters that are not allowed (NUL, control or lone surrogates)",
    },
    # widget labels
    "ui.tab.creator": {"es": "Creador de anuncios", "en": "Ad Creator"},
    "ui.tab.vault": {"es": "BrandVault", "en": "BrandVault"},
    "ui.prompt": {"es": "Describe tu anuncio", "en": "Describe your ad"},
    "ui.prompt.placeholder": {
        "es": "p. ej. zapatillas rojas sobre arena al atardecer",
        "en": "e.g. red sneakers on sand at sunset",
    },
    "cli.studio.starting": {
        "es": "Arrancando el motor del estudio (los modelos se cargan al primer uso)…",
        "en": "Starting the studio engine (models load when first used)…",
    },
    "cli.studio.still_starting": {
        "es": "… el motor sigue arrancando ({s} s)",
        "en": "… the engine is still starting ({s} s)",
    },
    "cli.studio.engine_exited": {
        "es": "El motor del estudio se detuvo al arrancar (código {code}); el motivo está en las líneas de arriba.",
        "en": "The studio engine stopped while starting (code {code}); the reason is in the lines above.",
    },
    "cli.studio.engine_silent": {
        "es": "El motor del estudio no respondió en {s} s. {detail}",
        "en": "The studio engine did not answer within {s} s. {detail}",
    },
    "cli.studio.data": {"es": "  carpeta de datos: {path}", "en": "  data folder: {path}"},
    "cli.studio.engine": {"es": "  motor: {engine}", "en": "  engine: {engine}"},
    "cli.studio.missing": {
        "es": "  falta {model}: descárgalo en Ajustes",
        "en": "  missing {model}: download it in Settings",
    },
    "cli.failed": {
        "es": "Enfoads no pudo terminar '{command}': {reason}. El detalle está en {log}.",
        "en": "Enfoads could not finish '{command}': {reason}. The details are in {log}.",
    },
    "cli.redis.port_in_use": {
        "es": "El puerto {port} ya está en uso (¿otro Redis o `enfoads redis` en marcha?). Usa --port con otro número.",
        "en": "Port {port} is already in use (another Redis or `enfoads redis` running?). Use --port with another number.",
    },
    "cli.info.data_dir": {"es": "carpeta de datos", "en": "data dir"},
    "cli.info.database": {"es": "base de datos", "en": "database"},
    "cli.info.device": {"es": "dispositivo", "en": "device"},
    "cli.info.budgets": {"es": "presupuestos", "en": "budgets"},
    "cli.info.gpu": {"es": "GPU", "en": "GPU"},
    "cli.info.ram": {"es": "RAM del equipo", "en": "host RAM"},
    "cli.info.models": {"es": "modelos en caché", "en": "cached models"},
    "cli.info.none": {"es": "ninguno aún", "en": "none yet"},
    "model.voice": {"es": "Voz: {name}", "en": "Voice: {name}"},
    "capability.image": {"es": "Imágenes", "en": "Images"},
    "capability.translate": {"es": "Traductor", "en": "Translator"},
    "capability.prompt": {"es": "Prompt mágico", "en": "Magic prompt"},
    "capability.faceswap": {"es": "Cambio de cara", "en": "Face swap"},
    "capability.subtitles": {"es": "Subtítulos", "en": "Subtitles"},
    "capability.liveportrait": {"es": "Avatar animado", "en": "Animated avatar"},
    "capability.lipsync": {"es": "Avatar con labios sincronizados", "en": "Lip-synced avatar"},
    "capability.avatar": {"es": "Avatar", "en": "Avatar"},
    "capability.video": {"es": "Vídeo", "en": "Video"},
    "capability.voice": {"es": "Voz", "en": "Voice"},
    "cli.export.zip": {"es": "{platform}: {path}", "en": "{platform}: {path}"},
    "cli.variants.headlines": {"es": "Titulares:", "en": "Headlines:"},
    "cli.variants.ctas": {"es": "Llamadas a la acción:", "en": "Calls to action:"},
    "cli.variants.brief": {
        "es": "Brief {brief_id} (resultados: enfoads variants results {brief_id} informe.csv)",
        "en": "Brief {brief_id} (results: enfoads variants results {brief_id} report.csv)",
    },
    "cli.export.unfinished": {
        "es": "La exportación no terminó en {seconds:g} s; sigue en la cola del motor",
        "en": "The export did not finish within {seconds:g} s; it stays in the engine's queue",
    },
    "cli.import.done": {
        "es": "Importados: {imported} · omitidos: {skipped} · ya estaban: {existing}",
        "en": "Imported: {imported} · skipped: {skipped} · already there: {existing}",
    },
    "cli.reindex.done": {
        "es": "Recuperados: {recovered} · omitidos: {skipped} · miniaturas: {thumbnails}",
        "en": "Recovered: {recovered} · skipped: {skipped} · thumbnails: {thumbnails}",
    },
    "cli.import.unreadable": {
        "es": "No se puede leer {file}: {reason}",
        "en": "Cannot read {file}: {reason}",
    },
    "ui.magic": {"es": "Prompt mágico", "en": "Magic prompt"},
    "ui.magic_help": {
        "es": "Traduce tu idea al inglés y la completa con luz, encuadre y estilo para cada formato.",
        "en": "Translates your idea into English and completes it with light, framing and style for each placement.",
    },
    "ui.placements_help": {
        "es": "Pulsa para añadir o quitar un formato: sale una imagen (o más) por cada uno.",
        "en": "Click to add or remove a placement: you get one image (or more) for each.",
    },
    "ui.seed_help": {
        "es": "Cada vez sale una imagen nueva. Para repetir una, marca la casilla y escribe su número de variación (aparece bajo cada resultado).",
        "en": "Each time you get a new image. To repeat one, tick the box and type its variation number (shown under each result).",
    },
    "ui.enhanced": {"es": "Prompt mejorado (editable)", "en": "Enhanced prompt (editable)"},
    "ui.style": {"es": "Estilo", "en": "Style"},
    "ui.placements": {"es": "Formatos", "en": "Placements"},
    "placement.1:1": {"es": "feed cuadrado", "en": "square feed"},
    "placement.9:16": {"es": "Stories, Reels, TikTok", "en": "Stories, Reels, TikTok"},
    "placement.16:9": {"es": "YouTube, web", "en": "YouTube, web"},
    "placement.4:5": {"es": "feed vertical", "en": "portrait feed"},
    "placement.2:3": {"es": "Pinterest", "en": "Pinterest"},
    "placement.3:2": {"es": "banner, web", "en": "banner, web"},
    "placement.1.91:1": {"es": "Google, LinkedIn", "en": "Google, LinkedIn"},
    "ui.seed": {"es": "Variación nº", "en": "Variation no."},
    "ui.seed_repeat": {"es": "Repetir una variación", "en": "Repeat a variation"},
    "ui.batch": {"es": "Imágenes por formato", "en": "Images per placement"},
    "ui.generate": {"es": "Generar", "en": "Generate"},
    "ui.cancel": {"es": "Cancelar", "en": "Cancel"},
    "ui.retry": {"es": "Reintentar", "en": "Retry"},
    "ui.retried": {"es": "{kind}: trabajo lanzado de nuevo.", "en": "{kind}: job started again."},
    "ui.cancelled": {"es": "Cancelado: no se guardó nada.", "en": "Cancelled: nothing was stored."},
    "ui.no_reason": {
        "es": "el trabajo terminó sin indicar el motivo",
        "en": "the job ended without a reason",
    },
    "ui.search": {"es": "Buscar", "en": "Search"},
    "ui.search_placeholder": {"es": "nombre, prompt o etiqueta", "en": "name, prompt or tag"},
    "ui.show_inputs": {
        "es": "Mostrar fotos de origen de cambios de cara",
        "en": "Show face-swap source photos",
    },
    "ui.show_inputs_help": {
        "es": "Las fotos que subiste solo para un cambio de cara se guardan aparte; márcalo para verlas.",
        "en": "Photos you uploaded only for a face swap are kept aside; tick this to see them.",
    },
    "ui.page": {"es": "Página {page} de {pages}", "en": "Page {page} of {pages}"},
    "ui.page_prev": {"es": "Anterior", "en": "Previous"},
    "ui.page_next": {"es": "Siguiente", "en": "Next"},
    "ui.close": {"es": "Cerrar", "en": "Close"},
    "ui.confirm_delete_kit_logo": {
        "es": "'{name}' es el logo de tu kit de marca. Pulsa Eliminar otra vez para quitarlo del kit y borrarlo.",
        "en": "'{name}' is your brand kit's logo. Press Delete again to remove it from the kit and delete it.",
    },
    "ui.confirm_delete_kit_font": {
        "es": "'{name}' es la fuente de tu kit de marca. Pulsa Eliminar otra vez para quitarla del kit y borrarla.",
        "en": "'{name}' is your brand kit's font. Press Delete again to remove it from the kit and delete it.",
    },
    "ui.kind": {"es": "Tipo", "en": "Kind"},
    "ui.all": {"es": "Todos", "en": "All"},
    "ui.refresh": {"es": "Actualizar", "en": "Refresh"},
    "ui.delete": {"es": "Eliminar", "en": "Delete"},
    "ui.confirm_delete": {
        "es": "¿Eliminar '{name}'? Pulsa de nuevo para confirmar.",
        "en": "Delete '{name}'? Click again to confirm.",
    },
    "ui.deleted": {"es": "'{name}' eliminado.", "en": "'{name}' deleted."},
    "ui.count": {
        "es": {"one": "{total} recurso", "other": "{total} recursos"},
        "en": {"one": "{total} asset", "other": "{total} assets"},
    },
    "ui.done": {
        "es": {
            "one": "Listo: {n} imagen (variación {seed}).",
            "other": "Listo: {n} imágenes (variación {seed}).",
        },
        "en": {
            "one": "Done: {n} image (variation {seed}).",
            "other": "Done: {n} images (variation {seed}).",
        },
    },
    "ui.tab.home": {"es": "Inicio", "en": "Home"},
    "ui.tab.faceswap": {"es": "Cambio de cara", "en": "Face Swap"},
    "ui.tab.video": {"es": "Estudio de vídeo", "en": "Video Studio"},
    "ui.tab.settings": {"es": "Ajustes", "en": "Settings"},
    "ui.tab.export": {"es": "Publicar", "en": "Publish"},
    "ui.tab.variants": {"es": "Variantes A/B", "en": "A/B variants"},
    "ui.variants.intro": {
        "es": "Un brief, varias versiones para probar: cada combinación de visual, titular y "
        "llamada a la acción es una variante, con el texto de marca compuesto en tipografía "
        "dentro de la zona segura de cada formato. Quédate con las que quieras, publícalas y, "
        "cuando tengas resultados, impórtalos para saber cuál gana.",
        "en": "One brief, several versions to test: every combination of visual, headline and "
        "call to action is a variant, its brand copy set in type inside each placement's safe "
        "zone. Keep the ones you want, publish them and, once you have results, import them "
        "to learn which one wins.",
    },
    "ui.variants.product": {"es": "Producto", "en": "Product"},
    "ui.variants.price": {"es": "Precio", "en": "Price"},
    "ui.variants.offer": {"es": "Oferta", "en": "Offer"},
    "ui.variants.audience": {"es": "Público", "en": "Audience"},
    "ui.variants.tone": {"es": "Tono", "en": "Tone"},
    "ui.variants.tone.friendly": {"es": "Cercano", "en": "Friendly"},
    "ui.variants.tone.premium": {"es": "Premium", "en": "Premium"},
    "ui.variants.tone.urgent": {"es": "Urgente", "en": "Urgent"},
    "ui.variants.tone.playful": {"es": "Divertido", "en": "Playful"},
    "ui.variants.concepts": {"es": "Visuales (1–3)", "en": "Visuals (1–3)"},
    "ui.variants.concepts.placeholder": {
        "es": "Un concepto por línea, p. ej.: taza humeante sobre mesa de madera",
        "en": "One concept per line, e.g.: steaming cup on a wooden table",
    },
    "ui.variants.headlines": {"es": "Titulares (2–4)", "en": "Headlines (2–4)"},
    "ui.variants.headlines.placeholder": {
        "es": "Un titular por línea (o pulsa «Proponer textos»)",
        "en": "One headline per line (or press «Propose copy»)",
    },
    "ui.variants.ctas": {"es": "Llamadas a la acción (1–3)", "en": "Calls to action (1–3)"},
    "ui.variants.ctas.placeholder": {
        "es": "Una por línea, p. ej.: Compra ahora",
        "en": "One per line, e.g.: Shop now",
    },
    "ui.variants.propose": {"es": "Proponer textos", "en": "Propose copy"},
    "ui.variants.palettes": {
        "es": "Probar también la segunda paleta de colores de la marca",
        "en": "Also test the brand's second colour palette",
    },
    "ui.variants.design": {"es": "Diseño", "en": "Design"},
    "ui.variants.full": {"es": "Todas las combinaciones", "en": "Every combination"},
    "ui.variants.fraction": {
        "es": "Diseño reducido (cada opción aparece)",
        "en": "Reduced design (every option appears)",
    },
    "ui.variants.count": {
        "es": "{variants} variantes × {placements} formatos = {images} imágenes",
        "en": "{variants} variants × {placements} placements = {images} images",
    },
    "ui.variants.run": {"es": "Crear variantes", "en": "Create variants"},
    "ui.variants.board": {"es": "Tablero de variantes", "en": "Variant board"},
    "ui.variants.saved": {"es": "Brief", "en": "Brief"},
    "ui.variants.placement": {"es": "Formato", "en": "Placement"},
    "ui.variants.factor.concept": {"es": "Visual", "en": "Visual"},
    "ui.variants.factor.headline": {"es": "Titular", "en": "Headline"},
    "ui.variants.factor.cta": {"es": "Llamada", "en": "Call to action"},
    "ui.variants.factor.palette": {"es": "Paleta", "en": "Palette"},
    "ui.variants.all": {"es": "todos", "en": "all"},
    "ui.variants.keep": {"es": "Mantener", "en": "Keep"},
    "ui.variants.missing": {"es": "(archivo borrado)", "en": "(file deleted)"},
    "ui.variants.kept": {
        "es": "{kept} de {total} variantes elegidas",
        "en": "{kept} of {total} variants kept",
    },
    "ui.variants.export": {"es": "Publicar las elegidas", "en": "Publish the kept ones"},
    "ui.variants.results": {"es": "Resultados", "en": "Results"},
    "ui.variants.results_help": {
        "es": "Exporta el informe por anuncio de Meta Ads Manager o Google Ads (CSV) con el ID "
        "de la variante en el nombre del anuncio, y súbelo aquí.",
        "en": "Export the per-ad report from Meta Ads Manager or Google Ads (CSV) with the "
        "variant's ID in the ad's name, and upload it here.",
    },
    "ui.variants.results_csv": {"es": "Informe CSV", "en": "CSV report"},
    "ui.variants.import": {"es": "Importar resultados", "en": "Import results"},
    "ui.variants.bad_brief": {
        "es": "Este brief no se puede leer (el archivo está dañado).",
        "en": "This brief cannot be read (its file is damaged).",
    },
    "ui.variants.choose_brief": {
        "es": "Elige primero el brief de estos resultados.",
        "en": "Choose the brief of these results first.",
    },
    "ui.variants.choose_csv": {
        "es": "Sube primero el informe CSV.",
        "en": "Upload the CSV report first.",
    },
    "ui.variants.col.variant": {"es": "Variante", "en": "Variant"},
    "ui.variants.col.impressions": {"es": "Impresiones", "en": "Impressions"},
    "ui.variants.col.clicks": {"es": "Clics", "en": "Clicks"},
    "ui.variants.col.ctr": {"es": "CTR", "en": "CTR"},
    "ui.variants.col.p_best": {"es": "P(mejor)", "en": "P(best)"},
    "ui.variants.again": {
        "es": "Nuevo brief desde lo que ganó",
        "en": "New brief from what won",
    },
    "ui.variants.from_winners": {
        "es": "El formulario tiene el brief con las opciones ganadoras primero: edítalo y crea "
        "la siguiente ronda.",
        "en": "The form holds the brief with the winning options first: edit it and create "
        "the next round.",
    },
    "video.ai_label": {"es": "Contenido generado con IA", "en": "AI-generated content"},
    "video.ai_label_avatar": {"es": "Avatar generado con IA", "en": "AI-generated avatar"},
    "ui.export.intro": {
        "es": "Elige imágenes y vídeos de la campaña y las plataformas: cada una recibe un ZIP "
        "con cada ubicación a su medida, comprobada y firmada (C2PA).",
        "en": "Choose the campaign's images and videos and the platforms: each gets a ZIP with "
        "every placement at its size, checked and signed (C2PA).",
    },
    "ui.export.assets": {"es": "Imágenes y vídeos", "en": "Images and videos"},
    "ui.export.platforms": {"es": "Plataformas", "en": "Platforms"},
    "ui.export.run": {"es": "Exportar", "en": "Export"},
    "ui.export.choose": {
        "es": "Elige al menos una imagen o un vídeo y una plataforma",
        "en": "Choose at least one image or video and one platform",
    },
    "ui.export.ready": {
        "es": "{platform}: {ready} de {total} archivos listos para subir",
        "en": "{platform}: {ready} of {total} files ready to upload",
    },
    "ui.export.zip": {"es": "ZIP de {platform}", "en": "{platform} ZIP"},
    "ui.avatar_ready": {
        "es": "Listo: la imagen ya es un avatar.",
        "en": "Done: the image is now an avatar.",
    },
    "ui.avatar_short": {"es": "Avatar", "en": "Avatar"},
    "ui.video_short": {"es": "Usar en vídeo", "en": "Use in video"},
    "ui.keep": {"es": "Guardar", "en": "Keep"},
    "ui.kept_tag": {"es": "guardado", "en": "kept"},
    "ui.done_keep": {
        "es": "Guardado en el BrandVault (etiqueta «guardado»).",
        "en": 'Kept in the BrandVault (tag "kept").',
    },
    "ui.done_use_avatar": {
        "es": "Listo: la imagen ya es un avatar.",
        "en": "Done: the image is now an avatar.",
    },
    "ui.done_use_video": {
        "es": "Añadida como escena en el Estudio de vídeo.",
        "en": "Added as a scene in the Video Studio.",
    },
    "ui.download": {"es": "Descargar", "en": "Download"},
    "ui.preview": {"es": "Ver", "en": "View"},
    "ui.tag": {"es": "Etiquetar", "en": "Tag"},
    "ui.tag_placeholder": {"es": "nueva etiqueta", "en": "new tag"},
    "ui.tagged": {"es": "Etiqueta «{tag}» añadida.", "en": 'Tag "{tag}" added.'},
    "ui.upload": {"es": "Subir", "en": "Upload"},
    "ui.use_avatar": {"es": "Usar como avatar", "en": "Use as avatar"},
    "ui.use_video": {"es": "Usar en vídeo", "en": "Use in video"},
    "ui.non_commercial": {"es": "solo uso no comercial", "en": "non-commercial use only"},
    "ui.commercial_unverified": {
        "es": "uso comercial por verificar (licencia de {models})",
        "en": "commercial use to be checked (licence of {models})",
    },
    "ui.licence_unverified": {
        "es": "licencia sin verificar: lee la ficha de la voz (enlace) antes de un uso comercial",
        "en": "licence not verified: read the voice's card (link) before commercial use",
    },
    "ui.home.title": {"es": "Estado del estudio", "en": "Studio status"},
    "ui.home.gpu": {"es": "GPU", "en": "GPU"},
    "ui.home.ram": {"es": "RAM", "en": "RAM"},
    "ui.home.models_use": {"es": "modelos", "en": "models"},
    "ui.home.machine": {
        "es": " · máquina {used:.1f} / {total:.1f} GB",
        "en": " · machine {used:.1f} / {total:.1f} GB",
    },
    "ui.home.loaded": {"es": "Modelos cargados: {models}", "en": "Models loaded: {models}"},
    "ui.home.missing": {
        "es": "Faltan modelos (descárgalos en Ajustes): {models}",
        "en": "Models missing (download them in Settings): {models}",
    },
    "ui.home.missing_title": {
        "es": "Faltan modelos: descárgalos aquí o en Ajustes (sin ellos, esa función no está disponible).",
        "en": "Models missing: download them here or in Settings (without them, that feature is unavailable).",
    },
    "ui.home.downloading": {
        "es": "Descargando {model}: sigue el progreso en Trabajos.",
        "en": "Downloading {model}: follow its progress under Jobs.",
    },
    "ui.choose": {"es": "— elige —", "en": "— choose —"},
    "ui.save_file": {"es": "Guardar {name}", "en": "Save {name}"},
    "ui.delete_confirm_short": {"es": "¿Eliminar? Pulsa otra vez", "en": "Delete? Press again"},
    "ui.home.jobs": {"es": "Trabajos", "en": "Jobs"},
    "ui.home.recent": {"es": "Imágenes recientes", "en": "Recent images"},
    "kind.image": {"es": "Imagen", "en": "Image"},
    "kind.video": {"es": "Vídeo", "en": "Video"},
    "kind.audio": {"es": "Audio", "en": "Audio"},
    "kind.avatar": {"es": "Avatar", "en": "Avatar"},
    "kind.logo": {"es": "Logo", "en": "Logo"},
    "kind.subtitle": {"es": "Subtítulos", "en": "Subtitles"},
    "kind.brand_kit": {"es": "Kit de marca", "en": "Brand kit"},
    "kind.font": {"es": "Fuente", "en": "Font"},
    "kind.export": {"es": "Exportación", "en": "Export"},
    "job.export_campaign": {"es": "Exportación", "en": "Export"},
    "stage.exporting": {
        "es": "Exportando {placement} ({n}/{total})",
        "en": "Exporting {placement} ({n}/{total})",
    },
    "asset.export": {
        "es": "Exportación {platform}: {files} archivos",
        "en": "{platform} export: {files} files",
    },
    "export.no_captions_model": {
        "es": "«{name}» sale sin subtítulos en los formatos verticales: el modelo de subtítulos "
        "no está descargado (Ajustes → Modelos)",
        "en": "«{name}» goes out without captions in the vertical placements: the subtitles "
        "model is not downloaded (Settings → Models)",
    },
    "export.hearing": {
        "es": "Escuchando «{name}» para sus subtítulos",
        "en": "Listening to «{name}» for its captions",
    },
    "export.refused": {
        "es": "No exportado ({placement}): {reason}",
        "en": "Not exported ({placement}): {reason}",
    },
    "export.trimmed": {
        "es": "{name}: recortado a {max_s:g} s para {placement}",
        "en": "{name}: trimmed to {max_s:g} s for {placement}",
    },
    "export.regenerating": {
        "es": "Generando {name} de nuevo en {ratios} (ninguna ubicación se acerca al formato)",
        "en": "Generating {name} again at {ratios} (no placement is near the canvas)",
    },
    "export.regenerated": {
        "es": "{name}: generado de nuevo en {ratios} con el mismo texto y semilla, para no recortar de más",
        "en": "{name}: generated again at {ratios} with the same prompt and seed, not to crop too much",
    },
    "export.cuts_copy": {
        "es": "recortar {variant} a este formato cortaría su texto: elige también su versión "
        "en el formato más cercano",
        "en": "cropping {variant} to this canvas would cut its copy: choose its version at the "
        "nearest ratio too",
    },
    "export.nothing": {
        "es": "Ninguno de los archivos elegidos sirve para {platform} (imágenes o vídeos)",
        "en": "None of the chosen files fits {platform} (images or videos)",
    },
    "check.format": {
        "es": "es {got}: {platform} pide {want}",
        "en": "is {got}: {platform} asks for {want}",
    },
    "check.canvas": {
        "es": "mide {got}: {platform} pide {want}",
        "en": "measures {got}: {platform} asks for {want}",
    },
    "check.bytes": {
        "es": "pesa {got_mb:.1f} MB: {platform} admite hasta {max_mb:.1f} MB",
        "en": "weighs {got_mb:.1f} MB: {platform} takes up to {max_mb:.1f} MB",
    },
    "check.duration": {
        "es": "dura {got:g} s: {platform} admite {min_s:g}–{max_s:g} s",
        "en": "lasts {got:g} s: {platform} takes {min_s:g}–{max_s:g} s",
    },
    "check.codec": {
        "es": "vídeo {got}: {platform} pide H.264 High, yuv420p",
        "en": "video {got}: {platform} asks for H.264 High, yuv420p",
    },
    "check.fps": {
        "es": "{got} fps variables o distintos de {want}: {platform} pide {want} fps constantes",
        "en": "{got} fps, variable or not {want}: {platform} asks for a constant {want} fps",
    },
    "check.gop": {
        "es": "un fotograma clave cada {got} fotogramas: se piden como mucho {want}",
        "en": "a keyframe every {got} frames: at most {want} are asked",
    },
    "check.faststart": {
        "es": "el índice (moov) va al final: no empieza a reproducirse hasta bajarse entero",
        "en": "its index (moov) is at the end: it cannot start playing until fully downloaded",
    },
    "check.audio": {
        "es": "audio {got}: {platform} pide AAC 48 kHz estéreo",
        "en": "audio {got}: {platform} asks for AAC 48 kHz stereo",
    },
    "check.captions": {
        "es": "sin subtítulos .srt al lado: {platform} los lee del archivo",
        "en": "no .srt captions beside it: {platform} reads them from the file",
    },
    "check.xmp_source": {
        "es": "el XMP no dice el mismo origen que el manifiesto C2PA ({want}): dice {got}",
        "en": "the XMP does not state the C2PA manifest's source type ({want}): it says {got}",
    },
    "check.unsafe_text": {
        "es": "{what} entra en la franja insegura ({bands}) de {placement}: la tapan los "
        "botones o el texto de la plataforma",
        "en": "{what} enters the unsafe band ({bands}) of {placement}: the platform's buttons "
        "or text cover it",
    },
    "check.text.headline": {"es": "el titular", "en": "the headline"},
    "check.text.price": {"es": "el precio", "en": "the price"},
    "check.text.cta": {"es": "el botón", "en": "the button"},
    "check.text.caption": {"es": "un subtítulo", "en": "a caption"},
    "check.band.top": {"es": "arriba", "en": "top"},
    "check.band.bottom": {"es": "abajo", "en": "bottom"},
    "check.band.left": {"es": "izquierda", "en": "left"},
    "check.band.right": {"es": "derecha", "en": "right"},
    "check.no_provenance": {
        "es": "sin credenciales de contenido (C2PA): {platform} no podrá etiquetarlo como IA",
        "en": "no Content Credentials (C2PA): {platform} cannot label it as AI",
    },
    "check.bad_provenance": {
        "es": "sus credenciales de contenido (C2PA) no validan: {problems}",
        "en": "its Content Credentials (C2PA) do not validate: {problems}",
    },
    "provenance.trusted": {
        "es": "Firmado por este estudio (C2PA): {source}",
        "en": "Signed by this studio (C2PA): {source}",
    },
    "provenance.valid": {
        "es": "Firmado (C2PA) por otro firmante: {source}",
        "en": "Signed (C2PA) by another signer: {source}",
    },
    "provenance.invalid": {
        "es": "Las credenciales (C2PA) no validan: el archivo cambió después de firmarse",
        "en": "The credentials (C2PA) do not validate: the file changed after it was signed",
    },
    "provenance.none": {
        "es": "Sin credenciales de contenido (C2PA): un archivo subido o anterior a la firma",
        "en": "No Content Credentials (C2PA): an upload, or a file from before signing",
    },
    "job.render_variants": {"es": "Variantes A/B", "en": "A/B variants"},
    "job.import_results": {"es": "Resultados de anuncios", "en": "Ad results"},
    "job.propose_copy": {"es": "Propuestas de texto", "en": "Copy proposals"},
    "stage.copy_llm": {
        "es": "Escribiendo titulares con el modelo de lenguaje",
        "en": "Writing headlines with the language model",
    },
    "notice.llm_no_copy": {
        "es": "El modelo de lenguaje '{model}' no dio titulares utilizables; se usaron las "
        "plantillas.",
        "en": "The language model '{model}' gave no usable headlines; the templates were used.",
    },
    "reason.unknown_combination": {
        "es": "«{code}» no es una combinación de este brief (p. ej. 1B2: visual 1, titular B, "
        "llamada 2; con dos paletas, 1B2-2)",
        "en": "«{code}» is not a combination of this brief (e.g. 1B2: visual 1, headline B, "
        "call to action 2; with two palettes, 1B2-2)",
    },
    "verdict.palette.wins": {
        "es": "La paleta {level} gana con {p} % de probabilidad.",
        "en": "Palette {level} wins with {p} % probability.",
    },
    "verdict.palette.open": {
        "es": "La paleta aún no se distingue.",
        "en": "The palette does not stand out yet.",
    },
    "kind.brief": {"es": "Brief", "en": "Brief"},
    "kind.ad_results": {"es": "Resultados", "en": "Results"},
    "stage.variants_visual": {
        "es": "Visual {n} de {total}: generando cada formato",
        "en": "Visual {n} of {total}: generating each placement",
    },
    "stage.variants_type": {
        "es": "Variante {n} de {total}: componiendo el texto de marca",
        "en": "Variant {n} of {total}: setting the brand layer",
    },
    "reason.text_does_not_fit": {
        "es": "«{text}» no cabe en {placement} ni con la letra más pequeña permitida: acórtalo",
        "en": "«{text}» does not fit {placement} even at the smallest type allowed: shorten it",
    },
    "reason.no_variant_rows": {
        "es": "ninguna fila nombra una variante de este brief (p. ej. {ids}) en el nombre del "
        "anuncio o en una columna «variant»",
        "en": "no row names a variant of this brief (e.g. {ids}) in the ad's name or a "
        "«variant» column",
    },
    "reason.no_results_header": {
        "es": "no encuentro la cabecera con impresiones y clics (exporta el informe por anuncio)",
        "en": "no header with impressions and clicks found (export the per-ad report)",
    },
    "asset.ad_results": {"es": "Resultados: {name}", "en": "Results: {name}"},
    "asset.ad_results_chart": {"es": "CTR por variante (95 %)", "en": "CTR per variant (95 %)"},
    "verdict.winner": {
        "es": "La variante {variant} gana con {p} % de probabilidad.",
        "en": "Variant {variant} wins with {p} % probability.",
    },
    "verdict.undecided": {
        "es": "Aún no hay ganadora clara (la mejor, {variant}, con {p} %): sigue la prueba.",
        "en": "No clear winner yet (the best, {variant}, at {p} %): keep the test running.",
    },
    "verdict.headline.wins": {
        "es": "El titular {level} gana con {p} % de probabilidad.",
        "en": "Headline {level} wins with {p} % probability.",
    },
    "verdict.headline.open": {
        "es": "El titular aún no se distingue.",
        "en": "The headline does not stand out yet.",
    },
    "verdict.concept.wins": {
        "es": "El visual {level} gana con {p} % de probabilidad.",
        "en": "Visual {level} wins with {p} % probability.",
    },
    "verdict.concept.open": {
        "es": "El visual aún no se distingue.",
        "en": "The visual does not stand out yet.",
    },
    "verdict.cta.wins": {
        "es": "La llamada a la acción {level} gana con {p} % de probabilidad.",
        "en": "Call to action {level} wins with {p} % probability.",
    },
    "verdict.cta.open": {
        "es": "La llamada a la acción aún no se distingue.",
        "en": "The call to action does not stand out yet.",
    },
    "job.generate_image": {"es": "Imágenes", "en": "Images"},
    "job.face_swap": {"es": "Cambio de cara", "en": "Face swap"},
    "job.face_swap_video": {"es": "Cambio de cara en vídeo", "en": "Video face swap"},
    "job.render_video": {"es": "Vídeo", "en": "Video"},
    "job.render_multi_scene": {"es": "Vídeo de varias escenas", "en": "Multi-scene video"},
    "job.prepare_model": {"es": "Descarga de modelo", "en": "Model download"},
    "ui.state.queued": {"es": "en cola", "en": "queued"},
    "ui.state.running": {"es": "en curso", "en": "running"},
    "ui.state.completed": {"es": "completado", "en": "completed"},
    "ui.state.failed": {"es": "fallido", "en": "failed"},
    "ui.state.cancelled": {"es": "cancelado", "en": "cancelled"},
    "ui.kit.title": {"es": "Kit de marca", "en": "Brand kit"},
    "ui.kit.logo": {"es": "Logo", "en": "Logo"},
    "ui.kit.primary": {"es": "Color principal", "en": "Main colour"},
    "ui.kit.accent": {"es": "Color de acento", "en": "Accent colour"},
    "ui.kit.font": {"es": "Fuente (.ttf/.otf)", "en": "Font (.ttf/.otf)"},
    "ui.kit.cta": {"es": "Llamada a la acción", "en": "Call to action"},
    "ui.kit.save": {"es": "Guardar kit", "en": "Save kit"},
    "ui.kit.saved": {"es": "Kit de marca guardado.", "en": "Brand kit saved."},
    "ui.settings.language": {"es": "Idioma", "en": "Language"},
    "ui.settings.models": {"es": "Modelos", "en": "Models"},
    "ui.settings.download": {"es": "Descargar", "en": "Download"},
    "ui.settings.budgets": {
        "es": "Presupuestos: GPU {gpu} GB, RAM {ram} GB · dispositivo {device}",
        "en": "Budgets: GPU {gpu} GB, RAM {ram} GB · device {device}",
    },
    "ui.settings.data_dir": {"es": "Carpeta de datos", "en": "Data folder"},
    "ui.settings.server": {"es": "Servidor HTTP", "en": "HTTP server"},
    "ui.settings.expose": {
        "es": "Túnel público para el cliente React (pide token)",
        "en": "Public tunnel for the React client (token required)",
    },
    "ui.settings.engine_api": {
        "es": "Esta página usa el motor del estudio, cuya API ya escucha en {url} (enfoads serve).",
        "en": "This page uses the studio engine, whose API already listens on {url} (enfoads serve).",
    },
    "ui.settings.server_on": {"es": "Servidor activo en", "en": "Server running at"},
    "ui.swap.accept": {
        "es": "He leído que estos modelos son solo para uso no comercial",
        "en": "I have read that these models are for non-commercial use only",
    },
    "ui.swap.source": {"es": "Cara de origen", "en": "Source face"},
    "asset.face_swap": {
        "es": "cambio de cara: {source} → {target}",
        "en": "face swap: {source} → {target}",
    },
    "licence.non_commercial": {
        "es": "{who}: solo investigación no comercial",
        "en": "{who}: non-commercial research use only",
    },
    "licence.see_card": {"es": "ver la ficha del modelo", "en": "see the model card"},
    "ui.swap.target": {"es": "Imagen o vídeo de destino", "en": "Target image or video"},
    "ui.swap.detect": {"es": "Detectar caras", "en": "Detect faces"},
    "ui.swap.face": {"es": "Cara a cambiar", "en": "Face to replace"},
    "ui.swap.source_face": {"es": "Cara a usar", "en": "Face to use"},
    "ui.swap.found_source": {"es": "En el origen: {n}.", "en": "In the source: {n}."},
    "ui.swap.largest": {"es": "la más grande", "en": "the largest"},
    "ui.swap.all": {"es": "todas", "en": "all"},
    "ui.swap.run": {"es": "Cambiar cara", "en": "Swap face"},
    "ui.swap.found": {
        "es": "Caras encontradas: {n} (numeradas de izquierda a derecha).",
        "en": "Faces found: {n} (numbered left to right).",
    },
    "ui.swap.pick_target": {
        "es": "Elige primero una imagen o un vídeo de destino.",
        "en": "Pick a target image or video first.",
    },
    "ui.swap.pick_both": {
        "es": "Elige la cara de origen y la imagen o el vídeo de destino.",
        "en": "Pick the source face and the target image or video.",
    },
    "ui.swap.done": {
        "es": {"one": "Listo: {n} cara cambiada.", "other": "Listo: {n} caras cambiadas."},
        "en": {"one": "Done: {n} face swapped.", "other": "Done: {n} faces swapped."},
    },
    "ui.swap.done_video": {
        "es": "Listo: cara cambiada en {n} de {total} fotogramas (audio conservado).",
        "en": "Done: face swapped in {n} of {total} frames (audio kept).",
    },
    "ui.swap.similarity": {
        "es": "La cara nueva se parece a la de origen en un {value:.0%}.",
        "en": "The new face resembles the source face by {value:.0%}.",
    },
    "ui.video.script": {"es": "Guion", "en": "Script"},
    "ui.video.script_placeholder": {
        "es": "Lo que dirá tu avatar…",
        "en": "What your avatar will say…",
    },
    "ui.video.voice": {"es": "Voz", "en": "Voice"},
    "ui.video.voice_help": {
        "es": "Voces naturales (Piper): nombre, país y calidad. Las marcadas se descargan al usarlas.",
        "en": "Natural voices (Piper): name, country and quality. Marked ones download on first use.",
    },
    "ui.video.to_download": {"es": "se descarga al usarla", "en": "downloads on first use"},
    "quality.high": {"es": "calidad alta", "en": "high quality"},
    "quality.medium": {"es": "calidad media", "en": "medium quality"},
    "quality.low": {"es": "calidad básica", "en": "basic quality"},
    "country.MX": {"es": "México", "en": "Mexico"},
    "country.AR": {"es": "Argentina", "en": "Argentina"},
    "country.ES": {"es": "España", "en": "Spain"},
    "country.US": {"es": "Estados Unidos", "en": "United States"},
    "country.GB": {"es": "Reino Unido", "en": "United Kingdom"},
    "ui.video.low_contrast": {
        "es": "El color de resaltado casi no se distingue del texto: elige uno más distinto.",
        "en": "The highlight colour can hardly be told from the text: choose a more different one.",
    },
    "ui.video.rate": {"es": "Velocidad", "en": "Speed"},
    "ui.video.preview": {"es": "Escuchar", "en": "Listen"},
    "ui.video.avatar": {"es": "Avatar", "en": "Avatar"},
    "ui.video.music": {"es": "Música", "en": "Music"},
    "ui.video.logo": {"es": "Logo", "en": "Logo"},
    "ui.video.font": {"es": "Fuente", "en": "Font"},
    "ui.video.motion.zoom_in": {"es": "Acercar", "en": "Zoom in"},
    "ui.video.motion.zoom_out": {"es": "Alejar", "en": "Zoom out"},
    "ui.video.motion.pan_left": {"es": "Barrido a la izquierda", "en": "Pan left"},
    "ui.video.motion.pan_right": {"es": "Barrido a la derecha", "en": "Pan right"},
    "ui.video.motion.none": {"es": "Fija", "en": "Still"},
    "ui.video.duration_help": {
        "es": "Segundos que dura la escena; en 0, lo que dure su voz",
        "en": "How many seconds the scene lasts; at 0, as long as its voice",
    },
    "ui.video.up": {"es": "Subir escena", "en": "Move scene up"},
    "ui.video.down": {"es": "Bajar escena", "en": "Move scene down"},
    "ui.video.aspect": {"es": "Formato", "en": "Aspect"},
    "ui.video.animator": {"es": "Animación de la cara", "en": "Face animation"},
    "ui.video.animator.auto": {"es": "Automática: {default}", "en": "Automatic: {default}"},
    "ui.video.animator.short.liveportrait": {"es": "LivePortrait", "en": "LivePortrait"},
    "ui.video.animator.short.lipsync": {"es": "labios sincronizados", "en": "lip-sync"},
    "ui.video.animator.lipsync": {
        "es": "Labios sincronizados (MuseTalk: la boca dice las palabras)",
        "en": "Lip-sync (MuseTalk: the mouth speaks the words)",
    },
    "ui.video.animator.short.classic": {"es": "clásica", "en": "classic"},
    "ui.video.animator.liveportrait": {
        "es": "LivePortrait (red neuronal)",
        "en": "LivePortrait (neural network)",
    },
    "ui.video.animator.classic": {
        "es": "Clásica (foto que habla)",
        "en": "Classic (talking photo)",
    },
    "ui.video.animator_help": {
        "es": "Labios sincronizados dibuja la boca de cada sílaba (MuseTalk, 3,9 GB, licencia MIT, "
        "uso comercial permitido) sobre el movimiento de la cabeza. LivePortrait mueve labios, ojos "
        "y cabeza como una persona (520 MB, MIT). Ambas necesitan una GPU para ir rápido y "
        "descargan sus modelos la primera vez (en Ajustes). La clásica funciona en cualquier equipo.",
        "en": "Lip-sync draws the mouth of each syllable (MuseTalk, 3.9 GB, MIT licence, commercial "
        "use allowed) over the head's motion. LivePortrait moves lips, eyes and head like a person "
        "(520 MB, MIT). Both need a GPU to be fast and download their models the first time (in "
        "Settings). The classic one runs anywhere.",
    },
    "ui.video.cta": {"es": "Llamada a la acción", "en": "Call to action"},
    "ui.video.subtitles": {"es": "Subtítulos", "en": "Subtitles"},
    "ui.video.karaoke": {"es": "Resaltar palabra a palabra", "en": "Highlight word by word"},
    "ui.video.position": {"es": "Posición", "en": "Position"},
    "ui.video.pos.bottom": {"es": "abajo", "en": "bottom"},
    "ui.video.pos.middle": {"es": "centro", "en": "middle"},
    "ui.video.pos.top": {"es": "arriba", "en": "top"},
    "ui.video.colour": {"es": "Color del texto", "en": "Text colour"},
    "ui.video.highlight": {"es": "Color de resaltado", "en": "Highlight colour"},
    "ui.video.scenes": {"es": "Escenas", "en": "Scenes"},
    "ui.video.scenes_help": {
        "es": "(opcional: sin escenas se usa el guion y el avatar de arriba)",
        "en": "(optional: with no scenes, the script and avatar above are used)",
    },
    "ui.video.add_scene": {"es": "Añadir escena", "en": "Add scene"},
    "ui.video.scene_script": {"es": "Guion de la escena", "en": "Scene script"},
    "ui.video.crossfade": {
        "es": "Fundido al pasar a la siguiente",
        "en": "Crossfade into the next",
    },
    "ui.video.scene_n": {"es": "Escena {n}", "en": "Scene {n}"},
    "ui.video.scene_kind": {"es": "Tipo", "en": "Kind"},
    "ui.video.scene_asset": {"es": "Imagen o clip", "en": "Picture or clip"},
    "ui.video.scene_script_label": {"es": "Guion", "en": "Script"},
    "ui.video.scene_duration": {"es": "Duración (s)", "en": "Length (s)"},
    "ui.video.scene_motion": {"es": "Movimiento", "en": "Motion"},
    "ui.video.kind.image": {"es": "Imagen", "en": "Image"},
    "ui.video.kind.avatar": {"es": "Avatar", "en": "Avatar"},
    "ui.video.kind.video": {"es": "Vídeo", "en": "Video"},
    "ui.video.render": {"es": "Crear vídeo", "en": "Render video"},
    "ui.video.done": {"es": "Vídeo listo: {seconds} s.", "en": "Video ready: {seconds} s."},
    "ui.failed": {"es": "No se pudo completar: {error}", "en": "Could not finish: {error}"},
    "ui.job_follow": {"es": "Trabajo {id}: también en Inicio.", "en": "Job {id}: also on Home."},
    "error.job_failed": {
        "es": "El trabajo {id} no se completó ({state}): {error}",
        "en": "Job {id} did not complete ({state}): {error}",
    },
}


class Text(str):
    """A translated text that remembers its key and parameters, so whoever stores it (a job's
    stage) can show it again in another language."""

    key: str
    params: dict[str, object]


class Reason:
    """A translatable detail inside a message (an error's ``reason``): rendered in the
    message's language, never as English inside Spanish."""

    def __init__(self, key: str, **params: object):
        self.key, self.params = key, params

    def render(self, lang: str) -> str:
        return t(self.key, lang, **self.params)

    def __str__(self) -> str:
        return self.render("en")


# Parameters that name a thing the user knows by another name (a voice by its dropdown name,
# not its Piper key): the module that knows the thing registers how to name it in a language.
# Stored messages keep the key, so they render in any language later.
NAMERS: dict[str, Callable[[object, str], str]] = {}


def register_namer(param: str, namer: Callable[[object, str], str]) -> None:
    NAMERS[param] = namer


def plural_form(count: object, lang: str) -> str:
    """``one`` or ``other`` (Spanish and English share the rule: exactly 1 is singular)."""
    return "one" if count == 1 or count == "1" else "other"


def kind_name(kind: str, lang: str = "es") -> str:
    """An asset kind in words ("Imagen"); a capability's kind with no translation, as written."""
    key = f"kind.{kind}"
    return t(key, lang) if key in CATALOG else kind.replace("_", " ")


def t(key: str, lang: str = "es", /, **params: object) -> Text:
    """The text for ``key`` in ``lang`` (Spanish when the language is unknown). An entry with
    ``one``/``other`` forms picks by its ``n`` (or ``count``, ``total``) parameter; a
    ``Reason`` parameter is rendered in the same language, and so are a ``field`` named in a
    sentence (``{field_label}``) and a ``what`` noun (``noun.<what>``)."""
    entry = CATALOG[key]
    template = entry.get(lang) or entry["es"]
    if isinstance(template, dict):
        count = next((params[k] for k in ("n", "count", "total") if k in params), None)
        template = template[plural_form(count, lang)]
    rendered = {k: v.render(lang) if isinstance(v, Reason) else v for k, v in params.items()}
    if "field" in params and f"field.{params['field']}" in CATALOG:
        rendered["field_label"] = t(f"field.{params['field']}", lang)
    else:
        rendered.setdefault("field_label", params.get("field", ""))
    for name, namer in NAMERS.items():
        if name in params:
            rendered[name] = namer(params[name], lang)
    if "kind" in params and f"kind.{params['kind']}" in CATALOG:  # an asset kind, in words
        rendered["kind"] = t(f"kind.{params['kind']}", lang)
    if "what" in params and f"noun.{params['what']}" in CATALOG:
        rendered["what"] = t(f"noun.{params['what']}", lang)
    text = Text(template.format(**rendered))
    text.key = key
    text.params = {
        k: ({"reason": v.key, "params": v.params} if isinstance(v, Reason) else v)
        for k, v in params.items()
    }
    return text


def render_stored(key: str, params: dict[str, object], lang: str) -> str:
    """A text stored as ``(key, params)`` (``Text.key``/``Text.params``) in ``lang``."""
    rendered = {
        k: Reason(v["reason"], **v.get("params", {}))
        if isinstance(v, dict) and "reason" in v
        else v
        for k, v in params.items()
    }
    return t(key, lang, **rendered)
