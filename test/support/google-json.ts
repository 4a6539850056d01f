/** Google API answers as the emulator tests read them: every field optional, nothing `any`. */

export interface GoogleDetail {
  "@type": string;
  reason?: string;
  retryDelay?: string;
  fieldViolations?: { field: string; description: string }[];
}

export interface Prediction {
  bytesBase64Encoded?: string;
  mimeType?: string;
  prompt?: string;
  raiFilteredReason?: string;
  contentType?: string;
  gcsUri?: string;
}

export interface Part {
  text?: string;
  inlineData?: { mimeType: string; data: string };
}

export interface GoogleJson {
  error?: { code: number; status: string; message: string; details?: GoogleDetail[] };
  predictions?: Prediction[];
  candidates?: { finishReason?: string; content?: { parts: Part[] } }[];
  promptFeedback?: { blockReason?: string };
  usageMetadata?: {
    promptTokenCount: number;
    candidatesTokenCount: number;
    totalTokenCount: number;
    candidatesTokensDetails: { modality: string; tokenCount: number }[];
  };
}

/** The OAuth token endpoint's answer. */
export interface TokenJson {
  access_token?: string;
  expires_in?: number;
  token_type?: string;
  error?: string;
  error_description?: string;
}

/** The first candidate's image part. */
export function imagePart(json: GoogleJson): { mimeType: string; data: string } {
  const part = json.candidates?.[0]?.content?.parts.find((p) => p.inlineData !== undefined);
  if (part?.inlineData === undefined)
    throw new Error(`no image part in ${JSON.stringify(json).slice(0, 200)}`);
  return part.inlineData;
}

/** Decoded bytes of prediction `i`. */
export function predictionBytes(json: GoogleJson, i = 0): Buffer {
  const b64 = json.predictions?.[i]?.bytesBase64Encoded;
  if (b64 === undefined) throw new Error(`no bytes in prediction ${i}`);
  return Buffer.from(b64, "base64");
}
