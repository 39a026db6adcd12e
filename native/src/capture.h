// edge_capture: a GStreamer pipeline ending in an appsink, a pull thread that keeps only the newest
// sample, and a JS-side read() that is settled by at most one threadsafe-function call per read.
// See native/README.md for the threading model and the memory rules.
#pragma once

#include <napi.h>

#include <gst/app/gstappsink.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace edge {

// An error as plain data, so the pull thread can record it and the JS thread can turn it into a JS
// Error later. `code` is one of the native codes documented in native/README.md.
struct ErrorInfo {
  std::string code;
  std::string message;
  std::string debug;
  std::string element;
  std::string domain;  // GStreamer error domain ("resource", "stream", "core", "library", "parse")
  int gstCode = 0;
};

class Capture : public Napi::ObjectWrap<Capture> {
 public:
  static Napi::Function Define(Napi::Env env);
  explicit Capture(const Napi::CallbackInfo& info);
  ~Capture() override;
  static void StopForExit(Capture* c);  // exit() safety net: stop the thread, free GStreamer objects

 private:
  static void CallJs(Napi::Env env, Napi::Function unused, Capture* self, void* data);
  using Tsfn = Napi::TypedThreadSafeFunction<Capture, void, &Capture::CallJs>;

  // JS methods (all on the JS thread of the env that created the object), each registered through
  // Guarded<> so that no C++ exception ever leaves a method (see ThrowOrDrop in capture.cc).
  using Method = Napi::Value (Capture::*)(const Napi::CallbackInfo&);
  template <Method M>
  Napi::Value Guarded(const Napi::CallbackInfo& info);
  Napi::Value Open(const Napi::CallbackInfo& info);
  Napi::Value Read(const Napi::CallbackInfo& info);
  Napi::Value Close(const Napi::CallbackInfo& info);
  Napi::Value Stats(const Napi::CallbackInfo& info);
  Napi::Value SetFull(const Napi::CallbackInfo& info);

  void PullLoop();                       // the pull thread
  void StopNative();                     // stop the thread, free GStreamer objects; no JS; idempotent
  void Wake(Napi::Env env);              // settle the pending read if there is something to settle
  void QueueWakeLocked();                // mu_ held: ask the JS thread to run Wake() (once)
  void GateLocked();                     // mu_ held: open the gate iff a read waits and no frame does
  void SetTerminalLocked(ErrorInfo err);  // mu_ held: the stream is over (error or EOS)
  // What a sink's frames look like, and the buffer copy mode reuses for them (one per sink).
  struct View {
    GstCaps* caps = nullptr;  // caps `info` was parsed from (ref held)
    GstVideoInfo info;
    Napi::Reference<Napi::Buffer<uint8_t>> reuse;
    size_t reuseSize = 0;
  };
  bool MakeFrame(Napi::Env env, View* view, GstSample* sample, uint64_t seq, uint64_t capturedAtNs, Napi::Value* out);
  void OnFullSample();                   // a streaming thread: the full-resolution sink has a sample
  static GstFlowReturn FullSampleCb(GstAppSink* sink, gpointer self);
  // The gate drops frames nobody waits for before they reach the sink; these probes count what
  // arrives at it and what passes, so those frames are still counted as received and dropped.
  static GstPadProbeReturn GateInProbe(GstPad* pad, GstPadProbeInfo* info, gpointer self);
  static GstPadProbeReturn GateOutProbe(GstPad* pad, GstPadProbeInfo* info, gpointer self);
  uint64_t GatedLocked() const;  // frames the gate dropped so far
  GstSample* TakeFullLocked(GstSample* frame, bool* wait);  // mu_ held: the full sample matching `frame`
  void SourceSize(int* width, int* height);
  void ReleaseFull();  // unref the full-resolution branch's elements (JS thread, pull thread stopped)  // JS thread: the caps entering the tee (the camera's size)
  static void CleanupHook(void* arg);    // env teardown (worker exit, process exit) without close()

  // Owned while open; touched by the JS thread only in Open/StopNative (the pull thread is not
  // running then) and by the pull thread in between.
  GstElement* pipeline_ = nullptr;
  GstAppSink* sink_ = nullptr;
  // The optional full-resolution branch: an appsink, the valve that opens it, and the tee whose
  // input caps are the camera's own size.
  GstAppSink* fullSink_ = nullptr;
  GstElement* valve_ = nullptr;
  GstPad* teePad_ = nullptr;
  // Optional: a valve in front of the scaler, open only while a read() waits for a frame, so
  // frames nobody will read are not scaled (the branch's queue holds what passed meanwhile).
  GstElement* gate_ = nullptr;
  bool gateOpen_ = true;
  GstBus* bus_ = nullptr;
  std::thread thread_;
  std::mutex lifeMu_;  // serialises StopNative (JS thread vs. the exit() safety net)
  std::atomic<bool> stop_{false};
  bool copy_ = true;
  // Every frame, none dropped: the pull thread takes the next sample only once the previous one was
  // read, so the pipeline waits on the appsink (a video file decoded for `infer`, not a live camera).
  bool lossless_ = false;
  uint64_t pullTimeoutNs_ = 0;

  // JS-thread-only state.
  bool open_ = false;       // between a successful open() and close()
  bool everOpened_ = false;
  napi_env env_ = nullptr;  // for the cleanup hook registration
  Tsfn tsfn_;
  std::unique_ptr<Napi::Promise::Deferred> deferred_;  // the pending read
  View view_;      // the main sink's frames
  View fullView_;  // the full-resolution sink's frames
  GstCaps* teeCaps_ = nullptr;  // last caps seen entering the tee (ref held)
  int sourceWidth_ = 0, sourceHeight_ = 0;

  // Shared between the pull thread and the JS thread.
  std::mutex mu_;
  GstSample* latest_ = nullptr;  // newest sample nobody has read yet (ref held)
  std::condition_variable taken_;  // lossless: latest_ was handed to a read (or the capture stops)
  uint64_t latestSeq_ = 0;
  uint64_t latestAtNs_ = 0;
  // Full-resolution samples not yet matched to a frame, oldest first (at most kFullRing).
  static constexpr size_t kFullRing = 4;
  std::vector<GstSample*> full_;
  bool fullOn_ = false;  // the valve is open: frames wait for their full-resolution twin
  bool readPending_ = false;  // a read() waits for latest_ or terminal_
  bool wakeQueued_ = false;   // a CallJs is queued; don't queue another
  bool terminalSet_ = false;
  ErrorInfo terminal_;
  // Counters: cumulative over the object's lifetime (all opens), never reset.
  uint64_t seq_ = 0;
  uint64_t received_ = 0;
  uint64_t delivered_ = 0;
  uint64_t dropped_ = 0;
  uint64_t errors_ = 0;
  std::atomic<uint64_t> gateIn_{0};   // buffers that reached the gate (streaming thread)
  std::atomic<uint64_t> gateOut_{0};  // buffers it let through
  uint64_t pulled_ = 0;               // samples taken from the model sink
};

}  // namespace edge
