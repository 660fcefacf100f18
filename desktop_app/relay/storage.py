"""The team's recordings store: one small protocol (`Store`), two implementations.

- `S3Store` — any S3-compatible object store (AWS S3, Cloudflare R2, MinIO, SeaweedFS…) through boto3,
  named ``s3://BUCKET[/PREFIX]``. The relay never streams a recording itself: HubSpot gets a presigned
  GET link whose response the store sends (Range and 206 included), with
  ``Content-Type: application/octet-stream`` forced by the signed ``response-content-type`` parameter
  (some stores guess ``audio/wav`` from the key). Desks upload straight to the store with presigned
  multipart upload: `begin`, `presigned_part` for each part, `parts_done` (so a resumed upload sends only
  the parts missing), `complete` or `abort`. The keys come from the standard ``AWS_*`` variables (or any
  other source of boto3's default chain); they never appear in a link (only the access key id, as S3's
  signature scheme requires) or in an error message.
- `FileStore` — a directory, named ``file:DIR``, for a team without object storage: the relay serves and
  receives the bytes itself, so there are no presigned links; parts are files joined on `complete`.

`open_store(url, **options)` builds either one from its URL. Every failure a user can meet (a bad URL,
a store that cannot be reached, refused keys, a missing bucket) is a `StorageError` with one sentence.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import uuid
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any, Protocol
from urllib.parse import urlsplit

from desktop_app.relay.presign import Presigner
from desktop_app.server.recordings import sha256_of

OCTET_STREAM = "application/octet-stream"
MIN_PART_SIZE = 5 * 1024 * 1024  # S3's smallest part (all but the last)
MAX_PARTS = 10_000
MAX_TTL_S = 7 * 24 * 3600  # SigV4's longest presigned link

CHUNK = 1024 * 1024

_KEY = re.compile(r"[A-Za-z0-9][A-Za-z0-9._=+@-]*(/[A-Za-z0-9._=+@-]+)*")
_BUCKET = re.compile(r"[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]")
_UPLOAD_ID = re.compile(r"[A-Za-z0-9._~=+/-]{1,1024}")


class StorageError(RuntimeError):
    """A problem with the store, said in one sentence a user can act on."""


class UploadGone(StorageError):
    """The store no longer knows an unfinished upload (aborted, or removed by a lifecycle rule)."""


@dataclass(frozen=True)
class Part:
    number: int
    size: int
    etag: str


class Store(Protocol):
    """What the relay needs from a recordings store."""

    url: str

    def put(self, key: str, data: IO[bytes] | bytes) -> None: ...
    def presigned_get(self, key: str, ttl_s: int) -> str: ...
    def begin(self, key: str) -> str: ...
    def presigned_part(self, key: str, upload_id: str, number: int, ttl_s: int) -> str: ...
    def parts_done(self, key: str, upload_id: str) -> dict[int, Part]: ...
    def complete(self, key: str, upload_id: str, etags: Mapping[int, str] | None = None) -> None: ...
    def abort(self, key: str, upload_id: str) -> None: ...
    def sha256(self, key: str) -> str: ...
    def exists(self, key: str) -> bool: ...
    def size(self, key: str) -> int: ...
    def delete(self, key: str) -> None: ...


def check_key(key: str) -> str:
    """A key is a relative path of plain segments: no ``..``, no empty segment, nothing that escapes."""
    if not isinstance(key, str) or len(key) > 512 or not _KEY.fullmatch(key) or any(
        seg in (".", "..") for seg in key.split("/")
    ):
        raise StorageError(f"{key!r} is not a valid recording key (letters, digits, ._=+@- and / only).")
    return key


def _check_ttl(ttl_s: int) -> int:
    if not 1 <= int(ttl_s) <= MAX_TTL_S:
        raise StorageError(f"A link's lifetime must be 1 s to 7 days, not {ttl_s} s.")
    return int(ttl_s)


def _check_part_number(number: int) -> int:
    if not 1 <= int(number) <= MAX_PARTS:
        raise StorageError(f"A part number must be 1..{MAX_PARTS}, not {number}.")
    return int(number)


def part_ranges(size: int, part_size: int) -> list[tuple[int, int, int]]:
    """``(number, offset, length)`` of each part of a ``size``-byte file cut in ``part_size`` parts."""
    if part_size < 1:
        raise StorageError("The part size must be positive.")
    count = max(1, -(-size // part_size))
    if count > MAX_PARTS:
        raise StorageError(f"A {size}-byte file needs parts larger than {part_size} bytes (at most {MAX_PARTS} parts).")
    return [(n + 1, n * part_size, min(part_size, size - n * part_size)) for n in range(count)]


# --- S3 ----------------------------------------------------------------------------------------------
class S3Store:
    """``s3://BUCKET[/PREFIX]`` through boto3. ``addressing`` is ``path`` (``ENDPOINT/BUCKET/KEY``, what
    MinIO and SeaweedFS expect by default), ``virtual`` (``BUCKET.ENDPOINT/KEY``, AWS's default) or
    ``auto`` (boto3 decides: virtual-host on AWS, path-style for an ``endpoint_url``)."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        *,
        endpoint_url: str | None = None,
        region: str | None = None,
        addressing: str = "auto",
        connect_timeout_s: float = 10,
        read_timeout_s: float = 60,
        client: Any = None,
    ) -> None:
        if not _BUCKET.fullmatch(bucket or "") or ".." in bucket:
            raise StorageError(f"{bucket!r} is not a valid bucket name (3-63 lower-case letters, digits, . and -).")
        if addressing not in ("auto", "path", "virtual"):
            raise StorageError(f"S3 addressing must be auto, path or virtual, not {addressing!r}.")
        if endpoint_url is not None:
            parts = urlsplit(endpoint_url)
            if parts.scheme not in ("http", "https") or not parts.hostname or parts.path not in ("", "/"):
                raise StorageError(f"The S3 endpoint must be an http(s)://HOST[:PORT] URL, not {endpoint_url!r}.")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        if self.prefix:
            check_key(self.prefix)
        self.endpoint_url = endpoint_url
        self.addressing = addressing
        self.url = f"s3://{bucket}" + (f"/{self.prefix}" if self.prefix else "")
        credentials = None  # a client handed in: its links all come from botocore
        if client is None:
            import boto3
            from botocore.config import Config

            try:
                session = boto3.session.Session()
                credentials = session.get_credentials()
                client = session.client(
                    "s3",
                    endpoint_url=endpoint_url,
                    region_name=region or None,
                    config=Config(
                        signature_version="s3v4",
                        s3={"addressing_style": addressing},
                        connect_timeout=connect_timeout_s,
                        read_timeout=read_timeout_s,
                        retries={"max_attempts": 4, "mode": "standard"},
                    ),
                )
            except Exception as exc:  # botocore's configuration errors (a bad region name…)
                raise StorageError(f"The S3 client cannot be set up: {_reason(exc)}.") from None
        self._s3 = client
        self._presign = Presigner(client, credentials)  # the links, signed here (see presign.py)

    def _key(self, key: str) -> str:
        check_key(key)
        return f"{self.prefix}/{key}" if self.prefix else key

    def _call(self, what: str, fn: Callable[..., Any], **params: Any) -> Any:
        try:
            return fn(Bucket=self.bucket, **params)
        except Exception as exc:
            raise _storage_error(what, self, exc) from None

    # -- objects --------------------------------------------------------------------------------
    def put(self, key: str, data: IO[bytes] | bytes) -> None:
        self._call("store the recording", self._s3.put_object, Key=self._key(key), Body=data,
                   ContentType=OCTET_STREAM)

    def presigned_get(self, key: str, ttl_s: int) -> str:
        """A GET link valid ``ttl_s`` seconds; the store answers ``application/octet-stream`` and honours
        ``Range`` (206) by itself."""
        try:
            full = self._key(key)
            return self._presign.url(
                "get_object", {"Bucket": self.bucket, "Key": full, "ResponseContentType": OCTET_STREAM}, full,
                {"response-content-type": OCTET_STREAM}, _check_ttl(ttl_s))
        except StorageError:
            raise
        except Exception as exc:  # no credentials
            raise _storage_error("sign a link", self, exc) from None

    def exists(self, key: str) -> bool:
        try:
            self._s3.head_object(Bucket=self.bucket, Key=self._key(key))
        except Exception as exc:
            if _status(exc) == 404:
                return False
            raise _storage_error("look for the recording", self, exc) from None
        return True

    def size(self, key: str) -> int:
        head = self._call("look for the recording", self._s3.head_object, Key=self._key(key))
        return int(head["ContentLength"])

    def delete(self, key: str) -> None:
        self._call("delete the recording", self._s3.delete_object, Key=self._key(key))

    def sha256(self, key: str) -> str:
        """The SHA-256 of the stored object, read as a stream (memory stays at one chunk)."""
        body = self._call("read the recording", self._s3.get_object, Key=self._key(key))["Body"]
        digest = hashlib.sha256()
        try:
            for chunk in body.iter_chunks(CHUNK):
                digest.update(chunk)
        except Exception as exc:
            raise _storage_error("read the recording", self, exc) from None
        finally:
            body.close()
        return digest.hexdigest()

    # -- multipart upload -------------------------------------------------------------------------
    def begin(self, key: str) -> str:
        answer = self._call("start an upload", self._s3.create_multipart_upload, Key=self._key(key),
                            ContentType=OCTET_STREAM)
        return str(answer["UploadId"])

    def presigned_part(self, key: str, upload_id: str, number: int, ttl_s: int) -> str:
        """A PUT link for part ``number`` (1..10,000) of the upload; every part but the last must hold
        at least 5 MiB."""
        try:
            full, number = self._key(key), _check_part_number(number)
            return self._presign.url(
                "upload_part", {"Bucket": self.bucket, "Key": full, "UploadId": _check_upload_id(upload_id),
                                "PartNumber": number}, full,
                {"partNumber": str(number), "uploadId": upload_id}, _check_ttl(ttl_s), method="PUT")
        except StorageError:
            raise
        except Exception as exc:
            raise _storage_error("sign a link", self, exc) from None

    def parts_done(self, key: str, upload_id: str) -> dict[int, Part]:
        """The parts the store holds for this upload: a resumed upload sends only the others. A part sent
        twice is one entry in S3's list; SeaweedFS (4.48) lists every copy, in no order of time: the last
        modified is kept (within one second, which one is a guess; `complete` takes the desk's ETags)."""
        done: dict[int, Part] = {}
        modified: dict[int, Any] = {}
        params: dict[str, Any] = {"Key": self._key(key), "UploadId": _check_upload_id(upload_id)}
        while True:
            page = self._call("list the uploaded parts", self._s3.list_parts, **params)
            for p in page.get("Parts", []):
                number, when = int(p["PartNumber"]), p.get("LastModified")
                if number in done and when is not None and modified.get(number) is not None \
                        and when < modified[number]:
                    continue
                done[number] = Part(number, int(p["Size"]), str(p["ETag"]))
                modified[number] = when
            if not page.get("IsTruncated"):
                return done
            params["PartNumberMarker"] = page["NextPartNumberMarker"]

    def complete(self, key: str, upload_id: str, etags: Mapping[int, str] | None = None) -> None:
        """Join the parts into the object. ``etags``: the ETag the store answered to each part the desk
        sent (what S3 clients pass); parts not in it are taken from the store's list."""
        parts = self.parts_done(key, upload_id)
        for number, etag in (etags or {}).items():
            if number not in parts:
                raise StorageError(f"The upload cannot be completed: the store does not hold part {number}.")
            parts[number] = Part(number, parts[number].size, etag)
        if not parts:
            raise StorageError("The upload cannot be completed: the store holds none of its parts.")
        numbers = sorted(parts)
        if numbers != list(range(1, len(numbers) + 1)):
            missing = sorted(set(range(1, numbers[-1] + 1)) - set(numbers))
            raise StorageError(f"The upload cannot be completed: parts {missing[:10]} are missing.")
        self._call(
            "complete the upload", self._s3.complete_multipart_upload, Key=self._key(key), UploadId=upload_id,
            MultipartUpload={"Parts": [{"PartNumber": n, "ETag": parts[n].etag} for n in numbers]},
        )

    def abort(self, key: str, upload_id: str) -> None:
        try:
            self._s3.abort_multipart_upload(Bucket=self.bucket, Key=self._key(key),
                                            UploadId=_check_upload_id(upload_id))
        except StorageError:
            raise
        except Exception as exc:
            if _status(exc) != 404:  # already gone: nothing to abort
                raise _storage_error("abort the upload", self, exc) from None


def _check_upload_id(upload_id: str) -> str:
    if not isinstance(upload_id, str) or not _UPLOAD_ID.fullmatch(upload_id):
        raise StorageError("That upload id is not one the store gave.")
    return upload_id


def _status(exc: BaseException) -> int | None:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        status = response.get("ResponseMetadata", {}).get("HTTPStatusCode")
        return int(status) if status else None
    return None


def _code(exc: BaseException) -> str:
    response = getattr(exc, "response", None)
    if isinstance(response, Mapping):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


def _reason(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.rstrip(".")


def _storage_error(what: str, store: S3Store, exc: BaseException) -> StorageError:
    """One sentence for a boto3/botocore failure; never the secret key (botocore never puts it in a
    message; the access key id is not a secret)."""
    name = type(exc).__name__
    code, status = _code(exc), _status(exc)
    where = store.endpoint_url or "S3"
    if name in ("NoCredentialsError", "PartialCredentialsError"):
        return StorageError(f"Cannot {what} in {store.url}: no S3 keys were found; set AWS_ACCESS_KEY_ID and "
                            "AWS_SECRET_ACCESS_KEY.")
    if name in ("EndpointConnectionError", "ConnectTimeoutError", "ConnectionClosedError", "ReadTimeoutError"):
        return StorageError(f"Cannot {what}: the object store at {where} cannot be reached ({_reason(exc)}).")
    if code in ("NoSuchBucket",):
        return StorageError(f"Cannot {what}: the bucket {store.bucket!r} does not exist at {where}.")
    if code in ("InvalidAccessKeyId", "SignatureDoesNotMatch", "AccessDenied") or status == 403:
        return StorageError(f"Cannot {what} in {store.url}: the store refused the S3 keys ({code or status}); "
                            "check AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and the bucket's permissions.")
    if code in ("NoSuchUpload",):
        return UploadGone(f"Cannot {what}: the store no longer knows this upload; start it again.")
    if code in ("NoSuchKey",) or status == 404:
        return StorageError(f"Cannot {what}: there is no such recording in {store.url}.")
    return StorageError(f"Cannot {what} in {store.url}: {_reason(exc)}.")


# --- a directory -----------------------------------------------------------------------------------------
class FileStore:
    """``file:DIR``: objects are files under DIR; an upload's parts are files in
    ``DIR/.uploads/<upload id>/`` joined on `complete`. No presigned links: the relay serves the
    recordings with its own signed-link server and receives the parts itself (`write_part`)."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().resolve()
        self.url = f"file:{self.root}"
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            (self.root / ".uploads").mkdir(exist_ok=True)
        except OSError as exc:
            raise StorageError(f"The recordings folder {self.root} cannot be created: {exc.strerror or exc}.") from None

    def path(self, key: str) -> Path:
        return self.root.joinpath(*check_key(key).split("/"))

    def _upload_dir(self, key: str, upload_id: str) -> Path:
        check_key(key)
        if not re.fullmatch(r"[0-9a-f]{32}", upload_id or ""):
            raise StorageError("That upload id is not one the store gave.")
        folder = self.root / ".uploads" / upload_id
        try:
            recorded = (folder / "key").read_text(encoding="utf-8")
        except OSError:
            raise UploadGone("The store no longer knows this upload; start it again.") from None
        if recorded != key:
            raise StorageError("That upload id belongs to another recording.")
        return folder

    def _write(self, target: Path, chunks: Iterable[bytes]) -> int:
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_name(f".{target.name}.{uuid.uuid4().hex}.part")
        written = 0
        try:
            with open(tmp, "wb") as out:
                for chunk in chunks:
                    out.write(chunk)
                    written += len(chunk)
                out.flush()
                os.fsync(out.fileno())
            os.replace(tmp, target)
        except OSError as exc:
            tmp.unlink(missing_ok=True)
            raise StorageError(f"Cannot write {target.name} in {self.root}: {exc.strerror or exc}.") from None
        return written

    def put(self, key: str, data: IO[bytes] | bytes) -> None:
        self._write(self.path(key), _chunks(data))

    def presigned_get(self, key: str, ttl_s: int) -> str:
        raise StorageError("A file: store has no presigned links: the relay serves its recordings itself.")

    def presigned_part(self, key: str, upload_id: str, number: int, ttl_s: int) -> str:
        raise StorageError("A file: store has no presigned links: desks upload their parts to the relay itself.")

    def exists(self, key: str) -> bool:
        return self.path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self.path(key).stat().st_size
        except OSError:
            raise StorageError(f"There is no such recording in {self.url}.") from None

    def delete(self, key: str) -> None:
        self.path(key).unlink(missing_ok=True)

    def sha256(self, key: str) -> str:
        try:
            return sha256_of(self.path(key))
        except OSError:
            raise StorageError(f"There is no such recording in {self.url}.") from None

    def begin(self, key: str) -> str:
        check_key(key)
        upload_id = uuid.uuid4().hex
        folder = self.root / ".uploads" / upload_id
        folder.mkdir()
        (folder / "key").write_text(key, encoding="utf-8")
        return upload_id

    def write_part(self, key: str, upload_id: str, number: int, data: IO[bytes] | bytes) -> Part:
        """Store part ``number`` (what the relay does with a desk's PUT); a part sent again replaces it."""
        folder = self._upload_dir(key, upload_id)
        target = folder / f"{_check_part_number(number):05d}"
        digest = hashlib.md5(usedforsecurity=False)

        def hashed() -> Iterable[bytes]:
            for chunk in _chunks(data):
                digest.update(chunk)
                yield chunk

        size = self._write(target, hashed())
        return Part(number, size, f'"{digest.hexdigest()}"')

    def parts_done(self, key: str, upload_id: str) -> dict[int, Part]:
        folder = self._upload_dir(key, upload_id)
        done: dict[int, Part] = {}
        for f in folder.iterdir():
            if f.name.isdigit():
                done[int(f.name)] = Part(int(f.name), f.stat().st_size, "")
        return done

    def complete(self, key: str, upload_id: str, etags: Mapping[int, str] | None = None) -> None:
        """Join the parts (each part's file holds its last copy, so ``etags`` adds nothing here)."""
        folder = self._upload_dir(key, upload_id)
        numbers = sorted(self.parts_done(key, upload_id))
        if not numbers or numbers != list(range(1, len(numbers) + 1)):
            raise StorageError("The upload cannot be completed: some of its parts are missing.")

        def joined() -> Iterable[bytes]:
            for n in numbers:
                with open(folder / f"{n:05d}", "rb") as f:
                    while chunk := f.read(CHUNK):
                        yield chunk

        self._write(self.path(key), joined())
        shutil.rmtree(folder, ignore_errors=True)

    def abort(self, key: str, upload_id: str) -> None:
        try:
            folder = self._upload_dir(key, upload_id)
        except StorageError:
            return
        shutil.rmtree(folder, ignore_errors=True)


def _chunks(data: IO[bytes] | bytes) -> Iterable[bytes]:
    if isinstance(data, (bytes, bytearray, memoryview)):
        yield bytes(data)
        return
    while chunk := data.read(CHUNK):
        yield chunk


# --- the desk's side of a multipart upload ---------------------------------------------------------------
def send_parts(
    path: str | os.PathLike[str],
    part_size: int,
    done: Mapping[int, Part],
    url_for: Callable[[int], str],
    *,
    session: Any = None,
    timeout_s: float = 120,
    on_part: Callable[[int, int], None] | None = None,
) -> dict[int, Part]:
    """PUT each part of ``path`` that ``done`` (the store's `parts_done`) does not hold with its full size,
    to the link ``url_for(number)`` gives; return the parts sent, with the ETag the store answered (for
    `complete`). ``on_part(number, size)`` is called after each part the store accepted (an exception
    raised there stops the upload, as a dropped connection does)."""
    import requests

    http = session or requests.Session()
    sent: dict[int, Part] = {}
    size = os.path.getsize(path)
    with open(path, "rb") as f:
        for number, offset, length in part_ranges(size, part_size):
            have = done.get(number)
            if have is not None and have.size == length:
                continue
            f.seek(offset)
            body = f.read(length)
            try:
                answer = http.put(url_for(number), data=body, timeout=timeout_s)
            except requests.RequestException as exc:
                raise StorageError(f"Part {number} could not be sent: {_reason(exc)}.") from None
            if answer.status_code != 200:
                raise StorageError(f"The store refused part {number} (HTTP {answer.status_code}).")
            sent[number] = Part(number, length, answer.headers.get("ETag", ""))
            if on_part is not None:
                on_part(number, length)
    return sent


# --- the URL -------------------------------------------------------------------------------------------
def open_store(
    url: str,
    *,
    endpoint_url: str | None = None,
    region: str | None = None,
    addressing: str = "auto",
    **options: Any,
) -> S3Store | FileStore:
    """``s3://BUCKET[/PREFIX]`` or ``file:DIR`` (also ``file:///DIR``)."""
    text = (url or "").strip()
    if text.startswith("s3://"):
        rest = text[len("s3://"):]
        bucket, _, prefix = rest.partition("/")
        if not bucket:
            raise StorageError(f"{url!r} names no bucket: write s3://BUCKET[/PREFIX].")
        return S3Store(bucket, prefix, endpoint_url=endpoint_url, region=region, addressing=addressing, **options)
    if text.startswith("file:"):
        rest = text[len("file:"):]
        if rest.startswith("//"):
            parts = urlsplit(text)
            if parts.netloc not in ("", "localhost"):
                raise StorageError(f"{url!r} names another host: a file: store is a folder on this machine.")
            rest = parts.path
        if not rest:
            raise StorageError(f"{url!r} names no folder: write file:DIR.")
        return FileStore(rest)
    raise StorageError(f"{url!r} is not a store this relay knows: write s3://BUCKET[/PREFIX] or file:DIR.")


if TYPE_CHECKING:  # mypy checks that both implementations keep to the protocol
    _S3_IS_A_STORE: Store = S3Store("bucket")
    _FILE_IS_A_STORE: Store = FileStore("dir")
