# Three addons:
#   edge_notify  - sd_notify and thread names; no dependency but libc, always built.
#   edge_tensor  - frame -> model input tensor; no dependency but libc, always built.
#   edge_capture - GStreamer appsink capture; built only when the GStreamer dev files are present.
# `with_gstreamer` defaults to what pkg-config finds; scripts/build-native.mjs passes it explicitly
# (-Dwith_gstreamer=0|1). The pkg-config calls below sit inside the condition, so gyp never runs
# them when GStreamer is absent.
{
  'variables': {
    'with_gstreamer%': '<!(pkg-config --exists gstreamer-app-1.0 gstreamer-video-1.0 >/dev/null 2>&1 && echo 1 || echo 0)',
  },
  'target_defaults': {
    'include_dirs': ["<!(node -p \"require('node-addon-api').include_dir\")"],
    'defines': [
      # Pinned: TypedThreadSafeFunction without a JS callback, env cleanup hooks, instance data.
      'NAPI_VERSION=8',
      'NAPI_CPP_EXCEPTIONS',
      # node-addon-api's own wrappers (ObjectWrap constructor, module init, finalizers) rethrow a
      # Napi::Error when napi_throw fails, which it does while a worker is being terminated: that
      # C++ exception has no frame to land in and std::terminate aborts the process. Dropped
      # instead: the env is going away and nobody can see it. Our methods are guarded in
      # capture.cc (ThrowOrDrop) for the same reason.
      'NODE_API_SWALLOW_UNTHROWABLE_EXCEPTIONS',
      'NODE_ADDON_API_DISABLE_DEPRECATED',
    ],
    'cflags!': ['-fno-exceptions'],
    'cflags_cc!': ['-fno-exceptions'],
    'cflags_cc': ['-std=c++17', '-Wall', '-Wextra', '-O2'],
  },
  'targets': [
    {
      'target_name': 'edge_notify',
      'sources': ['src/notify.cc'],
    },
    {
      # Frame -> model input tensor (no dependency but libc). No fused multiply-add: its results
      # must be the TypeScript reference's bit for bit.
      'target_name': 'edge_tensor',
      'sources': ['src/tensor.cc'],
      'cflags_cc': ['-O3', '-ffp-contract=off'],
    },
  ],
  'conditions': [
    ['with_gstreamer==1', {
      'targets': [
        {
          'target_name': 'edge_capture',
          'sources': ['src/capture.cc'],
          'cflags_cc': ['<!@(pkg-config --cflags gstreamer-app-1.0 gstreamer-video-1.0)'],
          'libraries': ['<!@(pkg-config --libs gstreamer-app-1.0 gstreamer-video-1.0)'],
          # Never unloaded: Node may dlclose() an addon when the worker that loaded it exits, while
          # GStreamer/GLib keep threads (task pools) and our exit() hook points into this library.
          'ldflags': ['-Wl,-z,nodelete'],
        },
      ],
    }],
  ],
}
