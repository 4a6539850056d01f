/**
 * A `multipart/form-data` body (RFC 7578) for the upstream edit APIs that take one (OpenAI,
 * Azure OpenAI, Recraft): text fields, then files, as a list of chunks (`http.ts` sends them
 * with their `content-length`, as the SDK does). The files' bytes are referenced, not
 * copied: a 4 MB upload is not joined into yet another 4 MB buffer per attempt.
 */
import { randomBytes } from "node:crypto";

export interface FormFile {
  name: string;
  filename: string;
  mimeType: string;
  bytes: Uint8Array;
}

export interface Form {
  fields: [string, string][];
  files: FormFile[];
}

/** Field and file names are ours (OpenAI's parameter names), never a client's: no escaping beyond quotes. */
function quoted(value: string): string {
  return `"${value.replace(/["\r\n\\]/g, "_")}"`;
}

export function encodeMultipart(
  form: Form,
  boundary = `imagegate-${randomBytes(12).toString("hex")}`,
): {
  contentType: string;
  body: Uint8Array[];
} {
  const parts: Buffer[] = [];
  for (const [name, value] of form.fields) {
    parts.push(
      Buffer.from(
        `--${boundary}\r\ncontent-disposition: form-data; name=${quoted(name)}\r\n\r\n${value}\r\n`,
      ),
    );
  }
  for (const file of form.files) {
    parts.push(
      Buffer.from(
        `--${boundary}\r\ncontent-disposition: form-data; name=${quoted(file.name)}; filename=${quoted(file.filename)}\r\ncontent-type: ${file.mimeType}\r\n\r\n`,
      ),
      Buffer.from(file.bytes.buffer, file.bytes.byteOffset, file.bytes.byteLength),
      Buffer.from("\r\n"),
    );
  }
  parts.push(Buffer.from(`--${boundary}--\r\n`));
  return { contentType: `multipart/form-data; boundary=${boundary}`, body: parts };
}
