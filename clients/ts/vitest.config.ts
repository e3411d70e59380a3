import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    // The integration tests start real servers; one file at a time keeps
    // the machine's two cores for the servers.
    fileParallelism: false,
    testTimeout: 5_000,
  },
});
