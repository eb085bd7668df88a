// AudioWorklet processor reporting the context time of the first sample louder than a threshold
// (used by diagnostics.js to measure A/V sync: when a beep is actually heard).
class OnsetTap extends AudioWorkletProcessor {
  constructor(options) {
    super();
    this.threshold = (options.processorOptions || {}).threshold || 0.1;
    this.armed = true;
    this.port.onmessage = () => { this.armed = true; };
  }

  process(inputs) {
    const input = inputs[0];
    if (this.armed && input && input.length) {
      const ch = input[0];
      for (let i = 0; i < ch.length; i++) {
        if (Math.abs(ch[i]) > this.threshold) {
          this.port.postMessage({ time: (currentFrame + i) / sampleRate });
          this.armed = false;
          break;
        }
      }
    }
    return true;
  }
}

registerProcessor('onset-tap', OnsetTap);
