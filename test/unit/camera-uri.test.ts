import { spawnSync } from 'node:child_process';
import { mkdtempSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { describe, expect, it } from 'vitest';
import { backoffDelayMs } from '../../src/capture/gst-camera.js';
import { cameraSource, fpsFraction, resolveCameraSource } from '../../src/capture/uri.js';
import { redactUri } from '../../src/config/camera-uri.js';
import { ConfigError, loadConfig } from '../../src/config/load.js';
import { type CameraConfig, cameraSchema, type ConfigInput } from '../../src/config/schema.js';
import { CLI } from '../helpers/daemon.js';

/** Camera URIs -> GStreamer pipelines: exact strings, options, and every way a URI can be wrong. */

const cam = (uri: string, extra: Record<string, unknown> = {}): CameraConfig => cameraSchema.parse({ uri, ...extra });
const pipelineOf = (uri: string, extra: Record<string, unknown> = {}): string => {
  const s = cameraSource('c', cam(uri, extra));
  if (s.kind === 'images') throw new Error('images:// has no pipeline');
  return s.pipeline;
};
const problemsOf = (uri: string, extra: Record<string, unknown> = {}): string[] => resolveCameraSource('c', cam(uri, extra)).problems;

const TAIL = 'videoconvert ! video/x-raw,format=RGB ! appsink name=sink';

describe('camera URIs -> pipelines', () => {
  it('test:// patterns, solid colours and options; RGB straight from the source', () => {
    expect(pipelineOf('test://ball')).toBe(
      `videotestsrc name=source is-live=true pattern=ball ! video/x-raw,format=RGB,width=640,height=480,framerate=30/1 ! ${TAIL} sync=false`,
    );
    expect(pipelineOf('test://solid?color=1a4dd9&width=320&height=240&fps=12.5')).toBe(
      'videotestsrc name=source is-live=true pattern=solid-color foreground-color=0xff1a4dd9 ! ' +
        `video/x-raw,format=RGB,width=320,height=240,framerate=25/2 ! ${TAIL} sync=false`,
    );
    expect(pipelineOf('test://solid?color=80336699')).toContain('foreground-color=0x80336699');
    expect(pipelineOf('test://')).toContain('pattern=smpte');
  });

  it('config keys win over the same option in the URI', () => {
    expect(pipelineOf('test://ball?width=320&height=240&fps=5', { width: 160, height: 120, fps: 2 })).toContain(
      'width=160,height=120,framerate=2/1',
    );
  });

  it('file:// plays at its own rate through uridecodebin; scaling and a rate cap when asked; loop', () => {
    expect(pipelineOf('file:///media/tray.avi')).toBe(`uridecodebin name=source uri="file:///media/tray.avi" ! ${TAIL} sync=true`);
    expect(pipelineOf('file:///media/my%20tray.avi?loop=1', { width: 320, height: 240, fps: 5 })).toBe(
      'uridecodebin name=source uri="file:///media/my%20tray.avi" ! videorate drop-only=true ! video/x-raw,framerate=5/1 ! ' +
        `videoscale ! video/x-raw,width=320,height=240,pixel-aspect-ratio=1/1 ! ${TAIL} sync=true`,
    );
    expect(cameraSource('c', cam('file:///a.avi?loop=1'))).toMatchObject({ kind: 'file', onEos: 'restart' });
    expect(cameraSource('c', cam('file:///a.avi', { loop: true }))).toMatchObject({ onEos: 'restart' });
    expect(cameraSource('c', cam('file:///a.avi'))).toMatchObject({ onEos: 'stop' });
  });

  it('v4l2:// (and a bare /dev path): MJPEG through jpegdec, raw formats, auto through decodebin', () => {
    expect(pipelineOf('v4l2:///dev/video0')).toBe(`v4l2src name=source device="/dev/video0" ! decodebin ! ${TAIL} sync=false`);
    expect(pipelineOf('v4l2:///dev/video0?format=mjpeg&width=1280&height=720&fps=30')).toBe(
      'v4l2src name=source device="/dev/video0" ! image/jpeg,width=1280,height=720,framerate=[30/1,1000/1] ! jpegdec ! ' +
        `videorate drop-only=true ! video/x-raw,framerate=30/1 ! ${TAIL} sync=false`,
    );
    expect(pipelineOf('/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_8A1B-video-index0', { format: 'yuyv', width: 640, height: 480 })).toBe(
      'v4l2src name=source device="/dev/v4l/by-id/usb-046d_HD_Pro_Webcam_C920_8A1B-video-index0" ! ' +
        `video/x-raw,format=YUY2,width=640,height=480 ! ${TAIL} sync=false`,
    );
    expect(pipelineOf('v4l2:///dev/v4l/by-path/pci-0000:00:14.0-usb-0:1:1.0-video-index0')).toContain(
      'device="/dev/v4l/by-path/pci-0000:00:14.0-usb-0:1:1.0-video-index0"',
    );
    expect(pipelineOf('v4l2:///dev/video2', { width: 640, height: 480 })).toContain(
      '! video/x-raw,width=640,height=480;image/jpeg,width=640,height=480 ! decodebin !',
    );
  });

  it('csi:// uses Argus and converts in hardware', () => {
    expect(pipelineOf('csi://1?width=1920&height=1080&fps=30')).toBe(
      'nvarguscamerasrc name=source sensor-id=1 ! video/x-raw(memory:NVMM),width=1920,height=1080,framerate=[30/1,1000/1] ! ' +
        'nvvidconv ! video/x-raw,format=RGBA ! videorate drop-only=true ! video/x-raw,framerate=30/1 ! appsink name=sink sync=false',
    );
  });

  it("rtsp:// keeps the camera's own query, takes ours out, and redacts the password for display", () => {
    const s = cameraSource('c', cam('rtsp://admin:s3cr%40t@10.0.0.5:554/cam/realmonitor?channel=1&subtype=0&transport=tcp&latency=50'));
    expect(s).toMatchObject({
      kind: 'rtsp',
      onEos: 'reconnect',
      display: 'rtsp://admin:***@10.0.0.5:554/cam/realmonitor?channel=1&subtype=0&transport=tcp&latency=50',
    });
    expect(s.kind !== 'images' && s.pipeline).toBe(
      'rtspsrc name=source location="rtsp://admin:s3cr%40t@10.0.0.5:554/cam/realmonitor?channel=1&subtype=0" latency=50 protocols=tcp drop-on-latency=true ! ' +
        `decodebin ! ${TAIL} sync=false`,
    );
    expect(pipelineOf('rtsps://cam.local/live', { latencyMs: 0, transport: 'udp' })).toContain(
      'location="rtsps://cam.local/live" latency=0 protocols=udp',
    );
    expect(pipelineOf('rtsp://cam.local/live')).toContain('latency=200 drop-on-latency=true');
  });

  it("gst:// is the expert's own pipeline, as written, if it ends in appsink name=sink", () => {
    const p = 'videotestsrc ! videoconvert ! video/x-raw,format=RGB ! appsink name=sink';
    expect(pipelineOf(`gst://${p}`)).toBe(p);
    expect(problemsOf('gst://videotestsrc ! fakesink')).toEqual([
      'cameras.c.uri: a gst:// pipeline must end in "appsink name=sink" (got "videotestsrc ! fakesink")',
    ]);
  });

  it('images:// stays a folder (spaces allowed: sharp reads it, not GStreamer)', () => {
    expect(cameraSource('c', cam('images:///srv/My Pictures', { fps: 5 }))).toEqual({
      kind: 'images',
      dir: '/srv/My Pictures',
      fps: 5,
      display: 'images:///srv/My Pictures',
    });
  });

  it('fps fractions', () => {
    expect([30, 0.5, 12.5, 29.97, 7.2].map(fpsFraction)).toEqual(['30/1', '1/2', '25/2', '2997/100', '36/5']);
  });

  it('redactUri hides only the password', () => {
    expect(redactUri('rtsp://u:p@h/x')).toBe('rtsp://u:***@h/x');
    expect(redactUri('rtsp://u@h/x')).toBe('rtsp://u@h/x');
    expect(redactUri('rtsp://h/x?a=b:c@d')).toBe('rtsp://h/x?a=b:c@d');
  });
});

describe('camera URIs: injection and mistakes are rejected, naming the config key', () => {
  const rejected: [string, string, Record<string, unknown>?][] = [
    [
      'rtsp://h/x ! filesink location=/tmp/pwn',
      'cameras.c.uri: must not contain a space; percent-encode it in URLs (got "rtsp://h/x ! filesink location=/tmp/pwn")',
    ],
    [
      'rtsp://h/x"!filesink location="/tmp/pwn',
      'cameras.c.uri: must not contain a quote; percent-encode it in URLs (got "rtsp://h/x\\"!filesink location=\\"/tmp/pwn")',
    ],
    ['rtsp://h/x\tfilesink', 'cameras.c.uri: must not contain whitespace; percent-encode it in URLs (got "rtsp://h/x\\tfilesink")'],
    ['rtsp://h/x\\"', 'cameras.c.uri: must not contain a backslash; percent-encode it in URLs (got "rtsp://h/x\\\\\\"")'],
    ['rtsp://u:pw@h/x y', 'cameras.c.uri: must not contain a space; percent-encode it in URLs (got "rtsp://u:***@h/x y")'],
    [
      'v4l2:///dev/video0 ! filesink location=/tmp/pwn',
      'cameras.c.uri: must not contain a space; percent-encode it in URLs (got "v4l2:///dev/video0 ! filesink location=/tmp/pwn")',
    ],
    [
      'v4l2:///dev/video0!filesink',
      'cameras.c.uri: expected a device path such as v4l2:///dev/video0 or v4l2:///dev/v4l/by-id/... (got "v4l2:///dev/video0!filesink")',
    ],
    [
      'v4l2:///dev/../etc/passwd',
      'cameras.c.uri: expected a device path such as v4l2:///dev/video0 or v4l2:///dev/v4l/by-id/... (got "v4l2:///dev/../etc/passwd")',
    ],
    [
      'v4l2://video0',
      'cameras.c.uri: expected a device path such as v4l2:///dev/video0 or v4l2:///dev/v4l/by-id/... (got "v4l2://video0")',
    ],
    [
      'test://smpte!filesink',
      'cameras.c.uri: unknown test pattern "smpte!filesink" (known: solid, smpte, snow, black, white, red, green, blue, checkers-1, checkers-2, checkers-4, checkers-8, circular, blink, smpte75, zone-plate, gamut, chroma-zone-plate, solid-color, ball, smpte100, bar, pinwheel, spokes, gradient, colors, smpte-rp-219)',
    ],
    ['test://solid?color=ff0000%20!%20filesink', 'cameras.c.uri: ?color= must be RRGGBB or AARRGGBB in hex (got "ff0000 ! filesink")'],
    ['test://ball?width=640,format=GRAY8', 'cameras.c.uri: ?width= must be a whole number from 16 to 8192 (got "640,format=GRAY8")'],
    ['test://ball?fps=30/1', 'cameras.c.uri: ?fps= must be a number above 0 and at most 1000 (got "30/1")'],
    // A rate of 0 would divide by zero in the framerate caps (and means no frames): refused, as 0.0 and a rate above 1000 are.
    ['test://ball?fps=0', 'cameras.c.uri: ?fps= must be a number above 0 and at most 1000 (got "0")'],
    ['rtsp://h/x?fps=0.0', 'cameras.c.uri: ?fps= must be a number above 0 and at most 1000 (got "0.0")'],
    ['v4l2:///dev/video0?fps=1000.5', 'cameras.c.uri: ?fps= must be a number above 0 and at most 1000 (got "1000.5")'],
    ['test://ball?location=x', 'cameras.c.uri: unknown option ?location= for test:// (known: width, height, fps, color)'],
    ['file://relative.avi', 'cameras.c.uri: expected an absolute path, file:///dir/video.mp4 (got "file://relative.avi")'],
    ['csi://0 ! filesink', 'cameras.c.uri: must not contain a space; percent-encode it in URLs (got "csi://0 ! filesink")'],
    ['csi://0;x', 'cameras.c.uri: expected a sensor number, csi://0 to csi://15 (got "csi://0;x")'],
    ['rtsp://', 'cameras.c.uri: expected rtsp://[user:password@]host[:port]/path (got "rtsp://")'],
    ['rtsp://h/x?transport=quic', 'cameras.c.uri: ?transport= must be auto, tcp or udp (got "quic")'],
    [
      'http://h/x.mjpg',
      'cameras.c.uri: unsupported scheme "http:" (supported: images://, test://, file://, v4l2://, csi://, rtsp://, gst://) (got "http://h/x.mjpg")',
    ],
    ['video0', 'cameras.c.uri: expected a URI such as test://ball, v4l2:///dev/video0 or rtsp://host/path (got "video0")'],
    ['test://ball', 'cameras.c.format: not used by test:// cameras (only by v4l2://)', { format: 'mjpeg' }],
    ['v4l2:///dev/video0', 'cameras.c.loop: not used by v4l2:// cameras (only by file://)', { loop: true }],
    ['rtsp://h/x', 'cameras.c.height: required when width is set', { width: 640 }],
  ];
  for (const [uri, problem, extra] of rejected) {
    it(`${JSON.stringify(uri)}${extra ? ` with ${JSON.stringify(extra)}` : ''}`, () => {
      expect(problemsOf(uri, extra)).toEqual([problem]);
      expect(() => cameraSource('c', cam(uri, extra))).toThrow(expect.objectContaining({ code: 'CAMERA_URI', message: problem }));
    });
  }

  it('every free string reaches GStreamer inside quotes and without quote characters', () => {
    const uris = [
      'rtsp://h:1/a/b?x=1&y=%22',
      'file:///tmp/x%20y.avi',
      'file:///tmp/a%22b%5C.avi',
      'v4l2:///dev/v4l/by-id/usb-x_y-video-index0',
    ];
    for (const uri of uris) {
      const p = pipelineOf(uri);
      const quoted = p.match(/"[^"]*"/g) ?? [];
      expect(quoted).toHaveLength(1);
      expect(p.replace(quoted[0] ?? '', '').includes('"')).toBe(false);
    }
  });
});

describe('camera URIs at config load (check-config)', () => {
  const dir = mkdtempSync(join(tmpdir(), 'cam-cfg-'));
  const write = (cfg: ConfigInput | string) => {
    const p = join(dir, `c${Math.random().toString(36).slice(2)}.yaml`);
    writeFileSync(p, typeof cfg === 'string' ? cfg : JSON.stringify(cfg));
    return p;
  };

  it('loadConfig lists every camera problem; relative file:// paths resolve against the config folder', () => {
    const file = write({
      cameras: {
        a: { uri: 'rtsp://h/x ! filesink location=/tmp/pwn' },
        b: { uri: 'test://ball', transport: 'tcp' },
        c: { uri: 'test://ball', reconnect: { initialMs: 5000, maxMs: 1000 } },
      },
    });
    let err: unknown;
    try {
      loadConfig({ file });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as ConfigError).problems).toEqual([
      'cameras.a.uri: must not contain a space; percent-encode it in URLs (got "rtsp://h/x ! filesink location=/tmp/pwn")',
      'cameras.b.transport: not used by test:// cameras (only by rtsp://)',
      'cameras.c.reconnect.maxMs: must be >= initialMs (5000) (got 1000)',
    ]);
    const ok = loadConfig({ file: write({ cameras: { f: { uri: 'file://media/tray.avi?loop=1' } } }) });
    expect(ok.cameras.f.uri).toBe(`file://${dir}/media/tray.avi?loop=1`);
    expect(ok.cameras.f.reconnect).toEqual({ initialMs: 1000, maxMs: 30_000, jitter: 0.2, stallMs: 10_000 });
  });

  it('edge-inferd check-config exits 1 naming the key', () => {
    const file = write('cameras:\n  door:\n    uri: "v4l2:///dev/video0 ! filesink location=/tmp/pwn"\n');
    const r = spawnSync(process.execPath, [CLI, 'check-config', file], { encoding: 'utf8' });
    expect(r.status).toBe(1);
    expect(r.stdout + r.stderr).toContain('cameras.door.uri: must not contain a space');
  });
});

describe('reconnect backoff', () => {
  const r = { initialMs: 1000, maxMs: 30_000, jitter: 0.2 };
  it('1 s doubling to a 30 s cap', () => {
    expect([1, 2, 3, 4, 5, 6, 7, 50].map((n) => backoffDelayMs(n, r, () => 0))).toEqual([
      1000, 2000, 4000, 8000, 16_000, 30_000, 30_000, 30_000,
    ]);
  });
  it('jitter only shortens a wait, by at most the jitter fraction', () => {
    expect(backoffDelayMs(1, r, () => 0.999999)).toBe(800);
    expect(backoffDelayMs(6, r, () => 0.5)).toBe(27_000);
    expect(backoffDelayMs(3, { ...r, jitter: 0 }, () => 0.7)).toBe(4000);
  });
});

describe('camera URIs: a single quote is refused like a double quote', () => {
  it("rtsp://h/x'y, and a file path that decodes to one", () => {
    const rtsp = "rtsp://h/x'y";
    const problem = `cameras.c.uri: must not contain a quote; percent-encode it in URLs (got ${JSON.stringify(rtsp)})`;
    expect(problemsOf(rtsp)).toEqual([problem]);
    expect(() => cameraSource('c', cam(rtsp))).toThrow(expect.objectContaining({ code: 'CAMERA_URI', message: problem }));
    // %27 gets past the URI check; the decoded path is checked again before it reaches the pipeline
    expect(problemsOf('file:///tmp/a%27b.mp4')).toEqual([`cameras.c.uri: the path contains a quote (got "file:///tmp/a%27b.mp4")`]);
  });
});
