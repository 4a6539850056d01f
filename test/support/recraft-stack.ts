/**
 * The Recraft end-to-end stack: a Recraft emulator behind the standard test gateway, whose
 * direct `recraft/<model>` names draw on it through RECRAFT_API_KEY / RECRAFT_API_BASE.
 */
import { type RecraftEmulator, startRecraftEmulator } from "@imagegate/emulators/recraft";
import { type Stack, startStack } from "./stack.ts";

export const RECRAFT_KEY = "rc-test-key-0123456789abcdef";

export interface RecraftStack {
  stack: Stack;
  recraft: RecraftEmulator;
  close(): Promise<void>;
}

export async function startRecraftStack(
  yaml: (recraft: RecraftEmulator) => string = () => "",
): Promise<RecraftStack> {
  const recraft = await startRecraftEmulator({ apiKey: RECRAFT_KEY, host: "127.0.0.1", port: 0 });
  const stack = await startStack({
    yaml: yaml(recraft),
    env: { RECRAFT_API_KEY: RECRAFT_KEY, RECRAFT_API_BASE: recraft.baseUrl },
  });
  return {
    stack,
    recraft,
    async close() {
      await stack.close();
      await recraft.close();
    },
  };
}
