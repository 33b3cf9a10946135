"""Signed provenance: C2PA Content Credentials on the files the studio makes.

Meta, TikTok and YouTube read C2PA manifests to label AI content, and the EU AI Act's
Article 50 asks that generated images, audio and video carry a machine-readable marking. Each
data dir has its own signing identity, made on first use: a local certificate authority and a
signing certificate under it (ECDSA P-256, ES256), kept with the key in one file,
``<data dir>/provenance/credentials.pem`` (0600 in a 0700 folder, never sent anywhere). Every
PNG, JPEG, MP4 and WAV the studio writes is signed with a manifest that says what made it:
``c2pa.created`` with the IPTC digital source type (``trainedAlgorithmicMedia``), or, for a
file that edits another (a face swap into a photo, an export's crop and re-encode), ``c2pa.opened``
on that file as the parent ingredient, then the edit with its source type
(``compositeWithTrainedAlgorithmicMedia`` for a real photo a model edited). The other inputs
(the source face, a video's scenes and music) are component ingredients, their own manifests
carried along. ``read`` validates a file's manifest with ``c2pa-python`` (this data dir's
authority trusted), and says what a platform will read.

The certificate is self-issued: the signature and every hash validate anywhere, but outside
this studio the signer shows as unknown (C2PA's trust list is for certificates bought from its
members); a studio that has one can replace ``credentials.pem`` (the key, then the chain).
"""

from __future__ import annotations

import datetime as dt
import io
import logging
import os
import re
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

log = logging.getLogger(__name__)

IPTC = "http://cv.iptc.org/newscodes/digitalsourcetype/"
TRAINED = "trainedAlgorithmicMedia"
COMPOSITE = "compositeWithTrainedAlgorithmicMedia"
MIME_BY_EXT = {
    "png": "image/png",
    "jpg": "image/jpeg",
    "jpeg": "image/jpeg",
    "mp4": "video/mp4",
    "wav": "audio/wav",
}
CREDENTIALS_FILE = "credentials.pem"
MAX_INGREDIENTS = 16  # a video of many scenes names its first inputs
STATES = ("trusted", "valid", "invalid", "none")
_PEM = re.compile(rb"-----BEGIN ([A-Z ]+)-----.+?-----END \1-----\n?", re.S)


def signable(ext: str) -> bool:
    return ext.lower() in MIME_BY_EXT


@dataclass(frozen=True)
class Ingredient:
    """A file this one was made from: ``parentOf`` the file it edits, ``componentOf`` an input
    placed in it."""

    title: str
    path: Path
    ext: str
    relationship: Literal["parentOf", "componentOf"] = "componentOf"


@dataclass(frozen=True)
class Claim:
    """What an asset's manifest says, beyond what the store knows (its name, models, parents).

    ``edits``: the parent asset this one edits (its other parents are components);
    ``source_type``: the IPTC digital source type; ``action``: the edit's C2PA action."""

    source_type: str = TRAINED
    description: str = ""
    edits: str | None = None
    action: str = "c2pa.edited"


def manifest(
    title: str,
    *,
    source_type: str | None,
    agents: tuple[str, ...] | list[str] = (),
    ingredients: tuple[Ingredient, ...] | list[Ingredient] = (),
    action: str = "c2pa.edited",
    description: str = "",
) -> dict[str, Any]:
    """The C2PA manifest definition: who made the file, how, and from what."""
    from enfoads.version import __version__

    agent = {"name": ", ".join(agents)[:200] or "Enfoads Studio"}
    parents = [f"i{n}" for n, i in enumerate(ingredients) if i.relationship == "parentOf"]
    parts = [f"i{n}" for n, i in enumerate(ingredients) if i.relationship != "parentOf"]
    main: dict[str, Any] = {"action": action if parents else "c2pa.created", "softwareAgent": agent}
    if source_type:  # an edit of a real photo by no model (an export's crop) names none
        main["digitalSourceType"] = IPTC + source_type
    if description:
        main["description"] = description[:300]
    if parts:
        main["parameters"] = {"ingredientIds": parts}
    actions = (
        [{"action": "c2pa.opened", "parameters": {"ingredientIds": parents}}] if parents else []
    )
    return {
        "claim_generator_info": [{"name": "Enfoads Studio", "version": __version__}],
        "title": title[:200],
        "assertions": [{"label": "c2pa.actions", "data": {"actions": [*actions, main]}}],
    }


# -- XMP: the IPTC digital source type, beside the manifest ---------------------------------
# XMP's own box in an MP4 (ISO BMFF): a top-level ``uuid`` box with this UUID, as Adobe's
# tools and exiftool write and read it.
XMP_UUID = bytes.fromhex("BE7ACFCB97A942E89C71999491E3AFAC")


def xmp_source_type(kind: str) -> str:
    """XMP naming the IPTC digital source type of a file: ``trainedAlgorithmicMedia`` (made by
    a model), or ``compositeWithTrainedAlgorithmicMedia`` (a real photo edited by one)."""
    return (
        '<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF '
        'xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">'
        '<rdf:Description xmlns:Iptc4xmpExt="http://iptc.org/std/Iptc4xmpExt/2008-02-29/" '
        f'Iptc4xmpExt:DigitalSourceType="{IPTC}{kind}"/></rdf:RDF></x:xmpmeta>'
    )


def _boxes(data: bytes) -> list[tuple[bytes, int, int]]:
    """The top-level boxes of an MP4: (type, start, end)."""
    out, at = [], 0
    while at + 8 <= len(data):
        size, kind = int.from_bytes(data[at : at + 4], "big"), data[at + 4 : at + 8]
        head = 8
        if size == 1 and at + 16 <= len(data):
            size, head = int.from_bytes(data[at + 8 : at + 16], "big"), 16
        elif size == 0:
            size = len(data) - at
        if size < head:
            break
        out.append((kind, at, min(at + size, len(data))))
        at += size
    return out


def mp4_with_xmp(data: bytes, xmp: str) -> bytes:
    """``data`` (an MP4) with ``xmp`` in XMP's top-level ``uuid`` box, appended after the
    others (no offset in ``moov`` moves; one already there is replaced)."""
    kept = b"".join(
        data[a:b]
        for kind, a, b in _boxes(data)
        if not (kind == b"uuid" and data[a + 8 : a + 24] == XMP_UUID)
    )
    body = XMP_UUID + xmp.encode("utf-8")
    return kept + (8 + len(body)).to_bytes(4, "big") + b"uuid" + body


def xmp_of(source: Path, ext: str) -> str:
    """A file's XMP packet (JPEG's APP1, PNG's iTXt, MP4's uuid box), or ""."""
    ext = ext.lower()
    try:
        if ext == "mp4":
            data = source.read_bytes()
            for kind, a, b in _boxes(data):
                if kind == b"uuid" and data[a + 8 : a + 24] == XMP_UUID:
                    return data[a + 24 : b].decode("utf-8", "replace")
            return ""
        from PIL import Image

        with Image.open(source) as image:
            xmp = image.info.get("xmp") or image.info.get("XML:com.adobe.xmp") or ""
        return xmp.decode("utf-8", "replace") if isinstance(xmp, bytes) else str(xmp)
    except (OSError, ValueError, SyntaxError):
        return ""


def xmp_source(source: Path, ext: str) -> str | None:
    """The IPTC digital source type a file's XMP names, or None."""
    found = re.search(re.escape(IPTC) + r"(\w+)", xmp_of(source, ext))
    return found[1] if found else None


def definition_source(definition: dict[str, Any]) -> str | None:
    """The digital source type a manifest definition (``manifest()``) states."""
    for assertion in definition.get("assertions", []):
        for action in (assertion.get("data") or {}).get("actions", []):
            kind = action.get("digitalSourceType")
            if kind:
                return kind.removeprefix(IPTC)
    return None


@dataclass
class Report:
    """What a file's C2PA manifest says, and whether it validates."""

    state: str = "none"  # trusted (signed by this data dir), valid (by another signer), ...
    source_type: str | None = None
    generator: str | None = None
    signer: str | None = None
    signed_at: str | None = None
    actions: list[dict[str, Any]] = field(default_factory=list)
    ingredients: list[dict[str, Any]] = field(default_factory=list)
    problems: list[str] = field(default_factory=list)  # C2PA validation codes that failed

    @property
    def signed(self) -> bool:
        return self.state != "none"

    def to_dict(self, lang: str = "es") -> dict[str, Any]:
        from enfoads.core.i18n import t

        return {
            "signed": self.signed,
            "state": self.state,
            "source_type": self.source_type,
            "ai_generated": bool(self.source_type and "Algorithmic" in self.source_type),
            "generator": self.generator,
            "signer": self.signer,
            "signed_at": self.signed_at,
            "actions": self.actions,
            "ingredients": self.ingredients,
            "problems": self.problems,
            "summary": t(f"provenance.{self.state}", lang, source=self.source_type or "?"),
        }


def _source_type(actions: list[dict[str, Any]]) -> str | None:
    for action in reversed(actions):
        kind = action.get("digitalSourceType")
        if kind:
            return str(kind).rsplit("/", 1)[-1]
    return None


def _report(reader: Any) -> Report:
    state = (reader.get_validation_state() or "").lower()
    active = reader.get_active_manifest() or {}
    actions: list[dict[str, Any]] = []
    for assertion in active.get("assertions", []):
        if assertion.get("label", "").startswith("c2pa.actions"):
            actions += assertion.get("data", {}).get("actions", [])
    results = reader.get_validation_results() or {}
    failures = (results.get("activeManifest") or {}).get("failure", [])
    problems = [f["code"] for f in failures if f.get("code") != "signingCredential.untrusted"]
    info = active.get("signature_info") or {}
    generator = (active.get("claim_generator_info") or [{}])[0]
    return Report(
        state=state if state in STATES and not problems else "invalid",
        source_type=_source_type(actions),
        generator=" ".join(str(generator.get(k, "")) for k in ("name", "version")).strip(),
        signer=info.get("common_name") or info.get("issuer"),
        signed_at=info.get("time"),
        actions=[
            {
                "action": a.get("action"),
                "source_type": str(a.get("digitalSourceType", "")).rsplit("/", 1)[-1] or None,
                "agent": (a.get("softwareAgent") or {}).get("name"),
                "description": a.get("description"),
            }
            for a in actions
        ],
        ingredients=[
            {
                "title": i.get("title"),
                "relationship": i.get("relationship"),
                "signed": bool(i.get("active_manifest")),
            }
            for i in active.get("ingredients", [])
        ],
        problems=problems,
    )


class Credentials:
    """This data dir's signing identity (made on first use) and the signing and reading."""

    def __init__(self, folder: Path):
        self.folder = folder
        self._lock = threading.Lock()
        self._pems: tuple[bytes, bytes, bytes] | None = None  # key, chain, authority

    @property
    def path(self) -> Path:
        return self.folder / CREDENTIALS_FILE

    def _load(self) -> tuple[bytes, bytes, bytes]:
        if self._pems is None:
            if not self.path.exists():
                self._create()
            blocks = [m.group(0) for m in _PEM.finditer(self.path.read_bytes())]
            keys = [b for b in blocks if b"PRIVATE KEY" in b[:40]]
            certs = [b for b in blocks if b"CERTIFICATE" in b[:40]]
            if len(keys) != 1 or not certs:
                raise ValueError(f"{self.path.name}: expected one key and its certificate chain")
            self._pems = keys[0], b"".join(certs), certs[-1]
        return self._pems

    def _create(self) -> None:
        """A local authority and a signing certificate under it, written aside and linked
        into place (a process that races this one keeps the first file made). Where the
        folder takes no hard links (Google Drive's mount in Colab), the file is created
        exclusively instead."""
        self.folder.mkdir(mode=0o700, parents=True, exist_ok=True)
        key, chain = _new_identity()
        tmp = self.folder / f".{CREDENTIALS_FILE}.{os.getpid()}.{threading.get_ident()}"
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as out:
            out.write(key + chain)
        try:
            os.link(tmp, self.path)
        except FileExistsError:
            return
        except OSError:  # no hard links here: an exclusive create, written whole
            try:
                fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            except FileExistsError:
                return
            with os.fdopen(fd, "wb") as out:
                out.write(key + chain)
        finally:
            tmp.unlink(missing_ok=True)
        log.info("made this data dir's provenance signing certificate")

    def authority_pem(self) -> str:
        return self._load()[2].decode()

    def sign(
        self, data: bytes, ext: str, definition: dict[str, Any], ingredients: tuple = ()
    ) -> bytes:
        """``data`` with a signed manifest embedded (``definition``: ``manifest()``)."""
        import c2pa

        mime = MIME_BY_EXT[ext.lower()]
        source = definition_source(definition)
        if ext.lower() == "mp4" and source:  # XMP beside the manifest, as in a JPEG or PNG
            data = mp4_with_xmp(data, xmp_source_type(source))
        out = io.BytesIO()
        with self._lock:
            key, chain, _ = self._load()
            info = c2pa.C2paSignerInfo(c2pa.C2paSigningAlg.ES256, chain, key, None)
            with (
                c2pa.Signer.from_info(info) as signer,
                c2pa.Context(settings=c2pa.Settings.from_dict(SIGN_SETTINGS)) as context,
                c2pa.Builder(definition, context=context) as builder,
            ):
                for n, item in enumerate(ingredients):
                    with item.path.open("rb") as stream:
                        builder.add_ingredient_from_stream(
                            {
                                "title": item.title[:200],
                                "relationship": item.relationship,
                                "instance_id": f"i{n}",
                                "label": f"i{n}",
                            },
                            MIME_BY_EXT.get(item.ext.lower(), "application/octet-stream"),
                            stream,
                        )
                builder.sign(signer, mime, io.BytesIO(data), out)
        return out.getvalue()

    def sign_file(self, path: Path, definition: dict[str, Any], ingredients: tuple = ()) -> None:
        """Sign a file in place (written aside, then renamed over it)."""
        ext = path.suffix.lstrip(".")
        signed = self.sign(path.read_bytes(), ext, definition, ingredients)
        tmp = path.with_name(f".{path.name}.signing")
        tmp.write_bytes(signed)
        tmp.replace(path)

    def read(self, source: Path | bytes, ext: str) -> Report:
        """Validate a file's manifest, this data dir's authority trusted."""
        return read(source, ext, self.authority_pem())


# No claim thumbnail: the file is its own picture (a PNG or JPEG) and a video's card has one;
# c2pa-rs's default made a JPEG of every image while signing (50-60 ms and 130 KB a 1024²
# result, most of storing it: benchmarks/job.py).
SIGN_SETTINGS: dict[str, Any] = {"builder": {"thumbnail": {"enabled": False}}}


def read(source: Path | bytes, ext: str, authority_pem: str | None = None) -> Report:
    """Validate a file's manifest (``authority_pem``: a certificate authority to trust):
    state ``none`` when the file carries none, ``invalid`` with the failed checks."""
    import c2pa

    mime = MIME_BY_EXT.get(ext.lower())
    if mime is None:
        return Report()
    stream = io.BytesIO(source) if isinstance(source, bytes) else source.open("rb")
    try:
        settings = {"trust": {"trust_anchors": authority_pem}} if authority_pem else {}
        with c2pa.Context(settings=c2pa.Settings.from_dict(settings)) as context:
            with c2pa.Reader(mime, stream, context=context) as reader:
                return _report(reader)
    except c2pa.C2paError as exc:
        if "ManifestNotFound" in type(exc).__name__ or "JUMBF" in str(exc):
            return Report()
        log.info("provenance of a %s file unreadable: %s", ext, str(exc)[:200])
        return Report(state="invalid", problems=[type(exc).__name__.lstrip("_")])
    finally:
        stream.close()


def _name(common: str) -> Any:
    from cryptography import x509
    from cryptography.x509.oid import NameOID

    return x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, "Enfoads Studio"),
        ]
    )


def _usage(**on: bool) -> Any:
    from cryptography import x509

    flags = dict.fromkeys(
        (
            "digital_signature content_commitment key_encipherment data_encipherment "
            "key_agreement key_cert_sign crl_sign encipher_only decipher_only"
        ).split(),
        False,
    )
    return x509.KeyUsage(**{**flags, **on})


def _new_identity() -> tuple[bytes, bytes]:
    """(the signing key, the certificate chain: signer then authority), as PEM."""
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import ExtendedKeyUsageOID

    now = dt.datetime.now(dt.timezone.utc) - dt.timedelta(minutes=5)
    years = dt.timedelta(days=3650)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())

    def builder(subject: Any, issuer: Any, public: Any) -> Any:
        return (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(issuer)
            .public_key(public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now)
            .not_valid_after(now + years)
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(public), critical=False)
        )

    ca_name = _name("Enfoads Studio local authority")
    authority = (
        builder(ca_name, ca_name, ca_key.public_key())
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .sign(ca_key, hashes.SHA256())
    )
    signer = (
        builder(_name("Enfoads Studio"), ca_name, key.public_key())
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        .add_extension(_usage(digital_signature=True), critical=True)
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.EMAIL_PROTECTION]), False)
        .add_extension(
            x509.AuthorityKeyIdentifier.from_issuer_public_key(ca_key.public_key()), False
        )
        .sign(ca_key, hashes.SHA256())
    )
    pem = serialization.Encoding.PEM
    key_pem = key.private_bytes(
        pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    return key_pem, signer.public_bytes(pem) + authority.public_bytes(pem)
