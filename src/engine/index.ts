export { StreamEngine, partitionOf, type EngineOutputs, type EngineStats, type StreamEngineOptions } from './stream-engine.js';
export { StreamRouter } from './router.js';
export { ReadingDecoder, describeValue, type DecodeError } from './decoder.js';
export { parseTime, parseIso, alignDown, isoOf } from './time.js';
export { TimerHeap } from './timer-heap.js';
