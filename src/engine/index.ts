export { StreamEngine, partitionOf, type EngineOutputs, type EngineStats, type StreamEngineOptions, type PreparedRestore } from './stream-engine.js';
export { StreamRouter, type RouterSnapshot } from './router.js';
export { ENGINE_SNAPSHOT_VERSION, type EngineSnapshot } from './checkpoint.js';
export { plainStateToJson, plainStateFromJson, encodeNumber, decodeNumber, describeJson, type JsonNumber } from './checkpoint-codec.js';
export { ReadingDecoder, describeProblem, describeValue, type DecodeError } from './decoder.js';
export { parseTime, parseIso, alignDown, isoOf } from './time.js';
export { TimerHeap } from './timer-heap.js';
