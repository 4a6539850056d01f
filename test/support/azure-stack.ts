/**
 * The Azure OpenAI end-to-end stack: an Azure emulator (with an Entra ID app registration)
 * behind the standard test gateway, whose direct `azure/<model>` names draw on the
 * emulator through AZURE_API_KEY / AZURE_API_BASE.
 */
import {
  type AzureEmulator,
  type AzureImageModel,
  type EntraApp,
  startAzureEmulator,
} from "@imagegate/emulators/azure";
import { type Stack, startStack } from "./stack.ts";

export const AZURE_KEY = "0123456789abcdef0123456789abcdef";
export const ENTRA_APP: EntraApp = {
  tenantId: "72f988bf-86f1-41af-91ab-2d7cd011db47",
  clientId: "9b1c6f0e-1d2a-4c3b-8e5f-6a7b8c9d0e1f",
  clientSecret: "entra-secret~LEAKCHECK~0123456789",
};

export interface AzureStack {
  stack: Stack;
  azure: AzureEmulator;
  close(): Promise<void>;
}

/**
 * `yaml(azure)` writes the gateway config once the emulator's endpoint is known.
 * `deployments` are the emulator's (name → model); default one per model, named after it.
 */
export async function startAzureStack(
  yaml: (azure: AzureEmulator) => string,
  deployments?: Record<string, AzureImageModel>,
): Promise<AzureStack> {
  const azure = await startAzureEmulator({
    apiKey: AZURE_KEY,
    entra: ENTRA_APP,
    host: "127.0.0.1",
    port: 0,
    ...(deployments ? { deployments } : {}),
  });
  const stack = await startStack({
    yaml: yaml(azure),
    env: { AZURE_API_KEY: AZURE_KEY, AZURE_API_BASE: azure.endpoint },
  });
  return {
    stack,
    azure,
    async close() {
      await stack.close();
      await azure.close();
    },
  };
}
