export * from './log.js';
export { createFileLog, type FileLogOptions, type FileLogRetention, type FsyncPolicy } from './file-log.js';
export { partitionOfKey } from './partitioner.js';
