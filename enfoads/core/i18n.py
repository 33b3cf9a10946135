"""The one catalogue of user-facing text, Spanish first, English second.

Log lines and code stay in English; everything a user reads comes from here through ``t()``.
"""

from __future__ import annotations

LANGUAGES = ("es", "en")

CATALOG: dict[str, dict[str, str]] = {
    # errors
    "error.empty": {
        "es": "El campo '{field}' está vacío.",
        "en": "The field '{field}' is empty.",
    },
    "error.too_long": {
        "es": "El campo '{field}' es demasiado largo: {length} caracteres (máximo {limit}).",
        "en": "The field '{field}' is too long: {length} characters (limit {limit}).",
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
    "error.unsafe_path": {
        "es": "La ruta '{path}' queda fuera de la carpeta de datos.",
        "en": "The path '{path}' lies outside the data folder.",
    },
    "error.model_unavailable": {
        "es": "No se pudo cargar el modelo '{model}': {reason}",
        "en": "The model '{model}' could not be loaded: {reason}",
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
        "es": "No se encontró ninguna cara en la imagen de {field} ('{name}').",
        "en": "No face was found in the {field} image ('{name}').",
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
    "stage.compiling": {
        "es": "Preparando la GPU para {placement} (solo la primera vez; puede tardar minutos)",
        "en": "Preparing the GPU for {placement} (first time only; may take minutes)",
    },
    "stage.swapping_frame": {"es": "Cambiando caras: fotograma {frame}/{total}",
                             "en": "Swapping faces: frame {frame}/{total}"},
    "stage.voice": {"es": "Generando la voz", "en": "Generating the voice"},
    "stage.animating": {"es": "Animando la cara", "en": "Animating the face"},
    "stage.subtitles": {"es": "Generando subtítulos", "en": "Generating subtitles"},
    "stage.rendering": {"es": "Componiendo el vídeo: fotograma {frame}/{total}",
                        "en": "Rendering the video: frame {frame}/{total}"},
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
    # widget labels
    "ui.tab.creator": {"es": "Creador de anuncios", "en": "Ad Creator"},
    "ui.tab.vault": {"es": "BrandVault", "en": "BrandVault"},
    "ui.prompt": {"es": "Describe tu anuncio", "en": "Describe your ad"},
    "ui.prompt.placeholder": {
        "es": "p. ej. zapatillas rojas sobre arena al atardecer",
        "en": "e.g. red sneakers on sand at sunset",
    },
    "ui.magic": {"es": "✨ Prompt mágico", "en": "✨ Magic prompt"},
    "ui.enhanced": {"es": "Prompt mejorado (editable)", "en": "Enhanced prompt (editable)"},
    "ui.style": {"es": "Estilo", "en": "Style"},
    "ui.placements": {"es": "Formatos", "en": "Placements"},
    "ui.seed": {"es": "Semilla (-1 = al azar)", "en": "Seed (-1 = random)"},
    "ui.batch": {"es": "Imágenes por formato", "en": "Images per placement"},
    "ui.generate": {"es": "Generar", "en": "Generate"},
    "ui.cancel": {"es": "Cancelar", "en": "Cancel"},
    "ui.search": {"es": "Buscar", "en": "Search"},
    "ui.kind": {"es": "Tipo", "en": "Kind"},
    "ui.all": {"es": "Todos", "en": "All"},
    "ui.refresh": {"es": "Actualizar", "en": "Refresh"},
    "ui.delete": {"es": "Eliminar", "en": "Delete"},
    "ui.confirm_delete": {"es": "¿Eliminar '{name}'? Pulsa de nuevo para confirmar.",
                          "en": "Delete '{name}'? Click again to confirm."},
    "ui.deleted": {"es": "'{name}' eliminado.", "en": "'{name}' deleted."},
    "ui.count": {"es": "{total} recursos", "en": "{total} assets"},
    "ui.done": {"es": "Listo: {n} imágenes (semilla {seed}).", "en": "Done: {n} images (seed {seed})."},
    "ui.failed": {"es": "No se pudo completar: {error}", "en": "Could not finish: {error}"},
}


def t(key: str, lang: str = "es", /, **params: object) -> str:
    """The text for ``key`` in ``lang`` (Spanish when the language is unknown)."""
    entry = CATALOG[key]
    template = entry.get(lang) or entry["es"]
    return template.format(**params)
