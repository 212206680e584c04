"""Folders of documents (Text, Markdown, HTML, JSON): which files they hold, and each file's text.

A folder is one partition. Its `name` identifies it: for a folder shipped inside this package
(the sample corpus, the project's READMEs) the path inside the package, so ids are the same on
every machine; for any other folder its absolute path. A file that is not UTF-8, does not parse,
is empty of text or too large is skipped with the reason; the rest of the folder is read.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath

from dlk_assets.sources.shards import SkippedRecord
from dlk_assets.text.extract import UnreadableDocument, extract_text

CONTENT_TYPES = {".txt": "text/plain", ".md": "text/markdown", ".html": "text/html", ".htm": "text/html",
                 ".json": "application/json"}
MAX_DOCUMENT_BYTES = 10 * 2**20  # a larger file is most likely data, not a document; it is skipped, never read whole
PACKAGE_ROOT = Path(__file__).resolve().parent.parent
SAMPLE_FOLDER = PACKAGE_ROOT / "data" / "documents" / "sample"
_MAX_KEY_CHARS = 64


def project_docs_folders() -> list[Path]:
    """The folders of the project's own per-source READMEs (`dlk_assets/defs/<source>/README.md`)."""
    return sorted(readme.parent for readme in (PACKAGE_ROOT / "defs").glob("*/README.md"))


def default_folders() -> list[Path]:
    """The bundled sample corpus, then the project's README folders."""
    return [SAMPLE_FOLDER, *project_docs_folders()]


def partition_key(name: str) -> str:
    """A readable partition key for a folder name: `data/documents/sample` -> `data-documents-sample`.
    A long name keeps its end plus a hash of the whole, so keys stay short and distinct."""
    slug = re.sub(r"[^A-Za-z0-9._-]+", "-", name).strip("-.") or "root"
    if len(slug) <= _MAX_KEY_CHARS:
        return slug
    return slug[-(_MAX_KEY_CHARS - 9):].lstrip("-.") + "-" + hashlib.sha256(name.encode()).hexdigest()[:8]


@dataclass(frozen=True)
class DocumentFolder:
    """A folder of documents: its stable name (what ids derive from), its path here, and its partition key."""

    name: str
    path: Path

    @property
    def key(self) -> str:
        """The folder's partition key."""
        return partition_key(self.name)


def document_folder(path: str | Path) -> DocumentFolder:
    """The folder at `path`, named by its place inside the package when it is shipped with it."""
    resolved = Path(path).expanduser().resolve()
    try:
        name = resolved.relative_to(PACKAGE_ROOT).as_posix()
    except ValueError:
        name = resolved.as_posix()
    return DocumentFolder(name, resolved)


def document_files(folder: Path) -> list[str]:
    """The readable files under `folder` (any depth), as sorted POSIX paths relative to it. Hidden files
    and folders (a leading dot) are left out. `FileNotFoundError` when the folder does not exist."""
    if not folder.is_dir():
        raise FileNotFoundError(f"document folder {folder} does not exist or is not a folder")
    found = []
    for root, folders, files in os.walk(folder):
        folders[:] = [name for name in folders if not name.startswith(".")]
        base = Path(root).relative_to(folder)
        found += [(base / name).as_posix() for name in files
                  if not name.startswith(".") and Path(name).suffix.lower() in CONTENT_TYPES]
    return sorted(found)


def folder_fingerprint(folder: Path) -> str:
    """A digest of the folder's readable files' names, sizes and modification times: it changes when a
    file is added, edited, replaced or deleted, without reading any file."""
    digest = hashlib.sha256()
    for relative in document_files(folder):
        stat = (folder / relative).stat()
        digest.update(f"{relative}\t{stat.st_size}\t{stat.st_mtime_ns}\n".encode())
    return digest.hexdigest()[:16]


@dataclass(frozen=True)
class DocumentFile:
    """One readable document: its path in the folder, bytes, MIME type, text and title."""

    path: str
    data: bytes
    content_type: str
    text: str
    title: str


@dataclass
class FolderRead:
    """The documents of a folder that could be read, and the files skipped with why."""

    documents: list[DocumentFile] = field(default_factory=list)
    skipped: list[SkippedRecord] = field(default_factory=list)


def content_type_of(path: str) -> str:
    """The MIME type for a file name's extension; `ValueError` for one this source does not read."""
    suffix = PurePosixPath(path).suffix.lower()
    if suffix not in CONTENT_TYPES:
        raise ValueError(f"{path}: not a document this source reads ({', '.join(CONTENT_TYPES)})")
    return CONTENT_TYPES[suffix]


def read_document(folder: Path, relative: str) -> DocumentFile:
    """Read and extract one file; `UnreadableDocument` says why it cannot be used."""
    path = folder / relative
    size = path.stat().st_size
    if size > MAX_DOCUMENT_BYTES:
        raise UnreadableDocument(f"{size} bytes is more than the {MAX_DOCUMENT_BYTES} a document may have")
    content_type = content_type_of(relative)
    data = path.read_bytes()
    extracted = extract_text(data, content_type)
    if not extracted.text.strip():
        raise UnreadableDocument("no text to index")
    return DocumentFile(relative, data, content_type, extracted.text, extracted.title or PurePosixPath(relative).stem)


def read_folder(folder: Path) -> FolderRead:
    """Every readable document of the folder, in path order; a file that cannot be used is skipped and
    listed (its position in the listing, its path, the reason), never failing the folder."""
    read = FolderRead()
    for position, relative in enumerate(document_files(folder)):
        try:
            read.documents.append(read_document(folder, relative))
        except (UnreadableDocument, OSError) as exc:  # OSError: deleted or unreadable between listing and reading
            read.skipped.append(SkippedRecord(position, relative, str(exc)))
    return read
