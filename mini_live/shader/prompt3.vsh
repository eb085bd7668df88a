#version 330 core
// Mouth-mesh vertex shader (reference §5.3 semantics, 3.3 core).
// a_position: model-space vertex (canonical mean-face units, y down).
// a_label_index: (label, index); index is the vertex's column in the blendshape texture.
// a_target: (x, y, w) the vertex's landmark in the source frame in NDC of the output image,
//           w = 1 when the vertex has one, 0 otherwise.
layout(location = 0) in vec3 a_position;
layout(location = 1) in vec2 a_label_index;
layout(location = 2) in vec3 a_target;

uniform mat4 gProjection;       // output pixels (x right, y down, z) -> NDC
uniform mat4 gWorld0;           // pose: model space -> output pixels
uniform float bsVec[12];        // blendshape weights
uniform int bsCount;            // rows of the blendshape texture in use (<= 12)
uniform sampler2D texture_bs;   // RGB32F, texel (index, row) = displacement per unit weight
uniform vec2 jawParams;         // lower teeth: y += jawParams.x * (bsVec[0] + bsVec[1]) + jawParams.y
uniform float teethDepth;       // NDC depth at which teeth and cavity are drawn (behind the face)

out float v_label;
out vec2 v_bias;

void main() {
    float label = a_label_index.x;
    int column = int(a_label_index.y + 0.5);
    vec3 pos = a_position;
    for (int i = 0; i < bsCount; ++i) {
        pos += bsVec[i] * texelFetch(texture_bs, ivec2(column, i), 0).rgb;
    }
    if (label > 3.5) {
        pos.y += jawParams.x * (bsVec[0] + bsVec[1]) + jawParams.y;
    }
    vec4 world = gWorld0 * vec4(pos, 1.0);
    vec4 clip = gProjection * vec4(world.xyz, 1.0);
    if (label > 2.5) {
        clip.z = teethDepth;
    }
    gl_Position = clip;
    v_label = label;
    v_bias = (label > -0.5 && a_target.z > 0.5) ? clip.xy - a_target.xy : vec2(0.0);
}
