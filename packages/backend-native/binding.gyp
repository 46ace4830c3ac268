{
  "targets": [
    {
      "target_name": "dptrain_native",
      "sources": [
        "native/addon.cc",
        "native/common.cc",
        "native/conv.cc",
        "native/filter-copies.cc",
        "native/filter-layouts.cc",
        "native/matmul.cc",
        "native/pool.cc",
        "native/elementwise.cc",
        "native/norm-pad.cc",
        "native/gradients.cc",
        "native/adam.cc",
        "native/merge.cc"
      ],
      "include_dirs": [
        "<!(node -p \"require('node-addon-api').include_dir\")",
        "<!(node scripts/find-dnnl.cjs include)"
      ],
      "libraries": ["-L<!(node scripts/find-dnnl.cjs lib)", "-Wl,-rpath,<!(node scripts/find-dnnl.cjs lib)", "-ldnnl", "-fopenmp"],
      "cflags!": ["-fno-exceptions"],
      "cflags_cc!": ["-fno-exceptions", "-fno-rtti"],
      "cflags_cc": ["-std=c++17", "-O3", "-ffp-contract=off", "-fno-math-errno", "-fopenmp", "-fexceptions"],
      "defines": ["NAPI_VERSION=8", "NAPI_CPP_EXCEPTIONS"]
    }
  ]
}
