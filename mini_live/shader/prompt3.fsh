#version 330 core
// Mouth-mesh fragment shader: label colours inside the mouth, warp field elsewhere (reference §5.3).
//   label 2.00 -> (1, 0, 0)    upper lip       label in (2, 2.1) -> (127/255, 0, 0) lower lip
//   label 3    -> (0, 1, 0)    upper teeth     label 4           -> (0, 0, 1)   lower teeth
//   label in (3, 4) -> black   mouth cavity
//   otherwise ((v_bias + 1) / 2, 0.5): warp field in RG, B = 0.5 marks "not mouth".
in float v_label;
in vec2 v_bias;
out vec4 fragColor;

const float EPS = 2e-4;

void main() {
    float L = v_label;
    if (abs(L - 2.0) < EPS) {
        fragColor = vec4(1.0, 0.0, 0.0, 1.0);
    } else if (L > 2.0 && L < 2.1) {
        fragColor = vec4(127.0 / 255.0, 0.0, 0.0, 1.0);
    } else if (abs(L - 3.0) < EPS) {
        fragColor = vec4(0.0, 1.0, 0.0, 1.0);
    } else if (abs(L - 4.0) < EPS) {
        fragColor = vec4(0.0, 0.0, 1.0, 1.0);
    } else if (L > 3.0 && L < 4.0) {
        fragColor = vec4(0.0, 0.0, 0.0, 1.0);
    } else {
        fragColor = vec4((v_bias + 1.0) * 0.5, 0.5, 1.0);
    }
}
