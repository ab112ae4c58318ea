import type Provider from 'oidc-provider';
import type { DeviceFlowSettings } from '../config.js';
import type { CounterStore } from '../store/counters.js';
import type { Views } from '../views.js';
import { limitCodeGuessing } from './code-guessing.js';
import { createDevicePages } from './pages.js';
import { enforcePollingInterval } from './polling.js';

/**
 * oidc-provider's `features.deviceFlow` (RFC 8628), on for the clients registered with the device_code grant. User
 * codes are eight letters of the RFC's base-20 alphabet (§6.1: no vowels, so no words; no digits, so no 0/O or 1/I
 * mix-ups), about 34 bits, shown as two groups of four; oidc-provider reads them case- and dash-insensitively.
 */
export function deviceFlowFeature(views: Views) {
  return { enabled: true, charset: 'base-20' as const, mask: '****-****', ...createDevicePages(views) };
}

/** The device flow's middleware: the user code guessing limit and the polling interval. */
export function useDeviceFlowLimits(provider: Provider, deps: { counters: CounterStore; settings: DeviceFlowSettings; views: Views; now: () => number }) {
  const { counters, settings, views, now } = deps;
  provider.use(limitCodeGuessing({ counters, maxPerMinute: settings.maxAttemptsPerMinute, views, now }));
  provider.use(enforcePollingInterval({ counters, intervalSeconds: settings.pollIntervalSeconds, now }));
}
