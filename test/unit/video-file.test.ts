import { describe, expect, it } from 'vitest';
import { looksLikeVideo, videoFilePipeline } from '../../src/capture/video-file.js';

/** How `edge-inferd infer` tells a video from an image, and the decode pipeline it builds for a path. */

const bytes = (...parts: (string | number[])[]) =>
  Uint8Array.from(parts.flatMap((p) => (typeof p === 'string' ? [...p].map((c) => c.charCodeAt(0)) : p)));

describe('video files', () => {
  it('knows containers by their first bytes, bare streams by their extension, and images are not videos', () => {
    expect(looksLikeVideo(bytes([0, 0, 0, 0x20], 'ftypisom'), 'clip.bin')).toBe(true);
    expect(looksLikeVideo(bytes([0x1a, 0x45, 0xdf, 0xa3]), 'clip')).toBe(true);
    expect(looksLikeVideo(bytes('RIFF', [1, 2, 3, 4], 'AVI LIST'), 'x')).toBe(true);
    expect(looksLikeVideo(bytes('OggS'), 'x')).toBe(true);
    expect(looksLikeVideo(bytes('not a video'), 'clip.h264')).toBe(true);
    expect(looksLikeVideo(bytes([0x89], 'PNG\r\n'), 'frame.png')).toBe(false);
    expect(looksLikeVideo(bytes([0xff, 0xd8, 0xff, 0xe0]), 'photo.jpg')).toBe(false);
    expect(looksLikeVideo(bytes('RIFF', [1, 2, 3, 4], 'WEBPVP8 '), 'photo.webp')).toBe(false);
    expect(looksLikeVideo(bytes('notes'), 'notes.txt')).toBe(false);
  });

  it('passes the path as a percent-encoded file URI: nothing in a file name can leave its quotes', () => {
    expect(videoFilePipeline('/data/kiosk clip #1.mp4')).toBe(
      'uridecodebin uri="file:///data/kiosk%20clip%20%231.mp4" ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink sync=false',
    );
    const tricky = '/data/a"b \'c\\d\ne ! filesink location=x.mp4';
    expect(videoFilePipeline(tricky)).toBe(
      'uridecodebin uri="file:///data/a%22b%20%27c%5Cd%0Ae%20!%20filesink%20location=x.mp4" ! videoconvert ! ' +
        'video/x-raw,format=RGB ! appsink name=sink sync=false',
    );
  });
});
