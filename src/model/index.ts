export * from './stream.js';
export * from './records.js';
export * from './detector.js';
export * from './alerting.js';
export * from './errors.js';
