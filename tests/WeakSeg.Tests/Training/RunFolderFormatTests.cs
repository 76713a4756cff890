using System.Text.Json.Nodes;
using WeakSeg.Pipelines;
using WeakSeg.Refinement.Affinity;
using WeakSeg.Segmentation;
using WeakSeg.Tests.Support;
using WeakSeg.Training;

namespace WeakSeg.Tests.Training;

/// <summary>
/// Run folders written before <see cref="RunDirectory"/> owned the layout still load through it: the three config.json texts below
/// are verbatim what `weakseg train`, `weakseg seg-train` and `weakseg affinity train` wrote (a 20-step mctformer-v2 run, a 20-step
/// segmenter on ground truth, a 10-step affinity run initialised from the MCTformer run; synthetic data in /tmp/ar/data).
/// </summary>
public class RunFolderFormatTests
{
    const string CamConfigJson = """
        {
          "format_version": 1,
          "preset": "cpu",
          "image_size": 96,
          "method": "mctformer-v2",
          "model": {
            "variant": "V2",
            "num_classes": 10,
            "backbone": {
              "image_size": 96,
              "patch_size": 8,
              "in_channels": 3,
              "embed_dim": 128,
              "depth": 4,
              "num_heads": 4,
              "mlp_ratio": 4,
              "qkv_bias": true,
              "layer_norm_eps": 1E-06,
              "num_class_tokens": 1,
              "drop_rate": 0,
              "attn_drop_rate": 0,
              "drop_path_rate": 0,
              "separate_position_embeddings": false,
              "position_embedding_resize": "DinoScaleFactor",
              "stem": "patch",
              "pretrained_stem": true,
              "stem_onnx": null,
              "freeze_stem": true,
              "stem_learning_rate_scale": 0.1
            },
            "cam_layers": 2
          },
          "trainer": {
            "steps": 20,
            "batch_size": 8,
            "base_lr": 0.001,
            "min_lr": 1E-05,
            "warmup_start_lr": 1E-06,
            "warmup_steps": 2,
            "weight_decay": 0.05,
            "no_weight_decay_names": [
              "pos_embed",
              "cls_token",
              "dist_token"
            ],
            "decay_all_parameters": false,
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1E-08,
            "optimizer": "AdamW",
            "momentum": 0.9,
            "schedule": "WarmupCosine",
            "poly_power": 0.9,
            "grad_clip_norm": null,
            "checkpoint_every": 10,
            "keep_last_checkpoints": 3,
            "log_every": 10,
            "collect_garbage_every": 1,
            "seed": 0,
            "device": "cpu",
            "threads": 1
          },
          "augmentation": {
            "mode": "RandomResizedCrop",
            "min_area_scale": 0.5,
            "max_area_scale": 1,
            "horizontal_flip_probability": 0.5,
            "color_jitter": 0.4
          },
          "data": {
            "root": "/tmp/ar/data",
            "split": "train",
            "num_classes": 10,
            "class_names": [
              "background",
              "disc",
              "boat",
              "triangle",
              "star",
              "cross",
              "blob",
              "crescent",
              "ring",
              "hexagon",
              "heart"
            ]
          },
          "init": null
        }
        """ + "\n";

    const string SegmentationConfigJson = """
        {
          "format_version": 1,
          "config": {
            "num_classes": 10,
            "backbone": {
              "image_size": 224,
              "patch_size": 8,
              "in_channels": 3,
              "embed_dim": 192,
              "depth": 4,
              "num_heads": 3,
              "mlp_ratio": 4,
              "qkv_bias": true,
              "layer_norm_eps": 1E-06,
              "num_class_tokens": 1,
              "drop_rate": 0,
              "attn_drop_rate": 0,
              "drop_path_rate": 0.1,
              "separate_position_embeddings": false,
              "position_embedding_resize": "DinoScaleFactor",
              "stem": "patch",
              "pretrained_stem": true,
              "stem_onnx": null,
              "freeze_stem": true,
              "stem_learning_rate_scale": 0.1,
              "grid_size": 28
            },
            "crop_size": 96,
            "decoder_layers": 1,
            "decoder_dim": 0,
            "decoder_heads": 0,
            "decoder_dropout": 0,
            "encoder_drop_path": 0,
            "loss": "GradientClipping",
            "clip_signal": "CrossEntropy",
            "clip_patch_size": 24,
            "clip_start_value": 0.3,
            "ignored_pixels": "CountAsZero",
            "clip_patch_remainder": "Error",
            "layer_norm_eps": 1E-05,
            "position_embedding_resize": "BilinearSize",
            "scale_masks_by_sqrt_dim": false,
            "clip_warmup_steps": 0,
            "steps": 20,
            "batch_size": 4,
            "optimizer": "AdamW",
            "warmup_steps": 20,
            "learning_rate": 0.0003,
            "min_learning_rate": 1E-05,
            "poly_power": 0.9,
            "momentum": 0.9,
            "weight_decay": 0.01,
            "encoder_learning_rate_scale": 1,
            "min_rescale": 0.75,
            "max_rescale": 1.5,
            "inference_scales": [
              1
            ],
            "inference_flip": true,
            "window_stride_fraction": 0.6666666666666666,
            "checkpoint_every": 250,
            "log_every": 10
          },
          "data_root": "/tmp/ar/data",
          "split": "train",
          "labels": "gt",
          "class_names": [
            "background",
            "disc",
            "boat",
            "triangle",
            "star",
            "cross",
            "blob",
            "crescent",
            "ring",
            "hexagon",
            "heart"
          ],
          "seed": 0,
          "init_weights": null
        }
        """;

    const string AffinityConfigJson = """
        {
          "format": "weakseg-affinity-1",
          "net": {
            "backbone": {
              "image_size": 96,
              "patch_size": 8,
              "in_channels": 3,
              "embed_dim": 128,
              "depth": 4,
              "num_heads": 2,
              "mlp_ratio": 4,
              "qkv_bias": true,
              "layer_norm_eps": 1E-06,
              "num_class_tokens": 10,
              "drop_rate": 0,
              "attn_drop_rate": 0,
              "drop_path_rate": 0.1,
              "separate_position_embeddings": false,
              "position_embedding_resize": "DinoScaleFactor",
              "stem": "patch",
              "pretrained_stem": true,
              "stem_onnx": null,
              "freeze_stem": true,
              "stem_learning_rate_scale": 0.1
            },
            "projection_channels": [
              64,
              128,
              256
            ],
            "fused_channels": 448,
            "upsample": 2
          },
          "labels": {
            "mode": "Thresholds",
            "low_threshold": 0.25,
            "high_threshold": 0.7,
            "low_alpha": 1,
            "high_alpha": 12,
            "use_crf": true,
            "crf": {
              "iterations": 10,
              "gaussian_sxy": 3,
              "gaussian_weight": 3,
              "bilateral_sxy": 80,
              "bilateral_srgb": 13,
              "bilateral_weight": 10,
              "probability_clip": 1E-05,
              "ground_truth_probability": 0.7,
              "probability_sum_tolerance": 0.001,
              "max_threads": null
            }
          },
          "radius": 5,
          "crop_size": 96,
          "head_learning_rate_scale": 10,
          "trainer": {
            "steps": 10,
            "batch_size": 2,
            "base_lr": 0.0001,
            "min_lr": 1E-06,
            "warmup_start_lr": 1E-06,
            "warmup_steps": 0,
            "weight_decay": 0.0005,
            "no_weight_decay_names": [
              "pos_embed",
              "cls_token",
              "dist_token"
            ],
            "decay_all_parameters": false,
            "beta1": 0.9,
            "beta2": 0.999,
            "eps": 1E-08,
            "optimizer": "AdamW",
            "momentum": 0.9,
            "schedule": "WarmupCosine",
            "poly_power": 0.9,
            "grad_clip_norm": null,
            "checkpoint_every": 10,
            "keep_last_checkpoints": 3,
            "log_every": 20,
            "collect_garbage_every": 1,
            "seed": 0,
            "device": "cpu",
            "threads": 1
          },
          "cam_dir": "/tmp/ar/before/maps",
          "data_root": "/tmp/ar/data",
          "split": "train",
          "init_weights": "/tmp/ar/before/cam/model-final.bin"
        }
        """;

    static RunDirectory FolderWith(TempDir dir, string configText)
    {
        var run = new RunDirectory(dir.File("run"));
        Directory.CreateDirectory(run.Path);
        File.WriteAllText(run.ConfigPath, configText);
        return run;
    }

    [Fact]
    public void A_cam_run_folder_of_format_1_loads_and_is_written_back_byte_for_byte()
    {
        using var dir = TestPaths.NewTempDir();
        var run = FolderWith(dir, CamConfigJson);
        var config = run.ReadConfig<RunConfig>();
        Assert.Equal(("mctformer-v2", "cpu", "/tmp/ar/data", "train", 10, (string?)null), (config.Recipe.Method, config.Preset, config.DataRoot, config.Split, config.NumClasses, config.InitWeights));
        Assert.Equal(("background", "heart"), (config.ClassNames[0], config.ClassNames[^1]));
        Assert.Equal((20L, 8, 0.001, 10L, 1), (config.Recipe.Trainer.Steps, config.Recipe.Trainer.BatchSize, config.Recipe.Trainer.BaseLr, config.Recipe.Trainer.CheckpointEvery, config.Recipe.Trainer.Threads));
        Assert.Equal(96, config.Recipe.ImageSize);
        Assert.Equal(config, RunConfig.Load(run.Path) with { Recipe = config.Recipe, ClassNames = config.ClassNames });
        Assert.Equal(CamConfigJson, RunDirectory.ConfigText(config));
    }

    [Fact]
    public void A_segmentation_run_folder_of_format_1_loads_and_keeps_its_fields_and_order()
    {
        using var dir = TestPaths.NewTempDir();
        var run = FolderWith(dir, SegmentationConfigJson);
        var info = run.ReadConfig<SegmentationRunInfo>();
        Assert.Equal(("/tmp/ar/data", "train", "gt", 0L, (string?)null), (info.DataRoot, info.Split, info.Labels, info.Seed, info.InitWeights));
        Assert.Equal(11, info.ClassNames.Length);
        Assert.Equal((10, 96, 20L, 4, 0.0003, 192), (info.Config.NumClasses, info.Config.CropSize, info.Config.Steps, info.Config.BatchSize, info.Config.LearningRate, info.Config.Backbone.EmbedDim));
        Assert.Equal(SegmentationDecoderLoss.GradientClipping, info.Config.Loss);
        Assert.Equal(info.Config.ToJson(), SegmentationRun.ReadInfo(run.Path).Config.ToJson());
        // the writer writes the same text (plus a final newline)
        Assert.Equal(SegmentationConfigJson + "\n", RunDirectory.ConfigText(info));
    }

    [Fact]
    public void An_affinity_run_folder_of_format_1_loads_and_is_rewritten_as_format_2_with_the_same_fields()
    {
        using var dir = TestPaths.NewTempDir();
        var run = FolderWith(dir, AffinityConfigJson);
        var config = run.ReadConfig<AffinityRunConfig>();
        Assert.Equal((10, 128, 2, 4), (config.Net.Backbone.NumClassTokens, config.Net.Backbone.EmbedDim, config.Net.Backbone.NumHeads, config.Net.Backbone.Depth));
        Assert.Equal((5, 96, 10.0, 10L, 2), (config.Radius, config.CropSize, config.HeadLearningRateScale, config.Trainer.Steps, config.Trainer.BatchSize));
        Assert.Equal(AffinityLabelMode.Thresholds, config.Labels.Mode);
        Assert.Equal(("/tmp/ar/before/maps", "/tmp/ar/data", "train", "/tmp/ar/before/cam/model-final.bin"), (config.CamDir, config.DataRoot, config.Split, config.InitWeights));
        Assert.Equal(config.Net.Backbone, AffinityRun.ReadConfig(run.Path).Net.Backbone);

        var rewritten = RunDirectory.ConfigText(config);
        Assert.Equal(AffinityConfigJson.Replace("\"format\": \"weakseg-affinity-1\"", "\"format_version\": 2") + "\n", rewritten);
        File.WriteAllText(run.ConfigPath, rewritten);
        Assert.Equal(rewritten, RunDirectory.ConfigText(run.ReadConfig<AffinityRunConfig>()));
    }

    [Fact]
    public void A_newer_or_missing_format_version_is_refused_with_a_line_naming_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        var run = FolderWith(dir, AffinityConfigJson.Replace("\"format\": \"weakseg-affinity-1\"", "\"format_version\": 3"));
        var newer = Assert.Throws<WeakSegException>(() => run.ReadConfig<AffinityRunConfig>());
        Assert.Contains(run.ConfigPath, newer.Message);
        Assert.Contains("format_version 3 is not supported (this build reads 1 to 2; the run was written by a newer WeakSeg)", newer.Message);

        File.WriteAllText(run.ConfigPath, CamConfigJson.Replace("\"format_version\": 1,", ""));
        var missing = Assert.Throws<WeakSegException>(() => run.ReadConfig<RunConfig>());
        Assert.Contains(run.ConfigPath, missing.Message);
        Assert.Contains("missing field 'format_version'", missing.Message);

        File.WriteAllText(run.ConfigPath, AffinityConfigJson.Replace("\"format\": \"weakseg-affinity-1\"", "\"format\": \"weakseg-affinity-9\""));
        Assert.Contains("missing field 'format_version'", Assert.Throws<WeakSegException>(() => run.ReadConfig<AffinityRunConfig>()).Message);

        File.WriteAllText(run.ConfigPath, "{ \"format_version\": \"one\" }");
        Assert.Contains("'format_version' must be a whole number", Assert.Throws<WeakSegException>(() => run.ReadConfig<RunConfig>()).Message);
    }

    [Fact]
    public void A_folder_of_another_kind_is_refused_naming_the_file()
    {
        using var dir = TestPaths.NewTempDir();
        var run = FolderWith(dir, SegmentationConfigJson);
        var e = Assert.Throws<WeakSegException>(() => run.ReadConfig<RunConfig>());
        Assert.Contains(run.ConfigPath, e.Message);
        Assert.Contains("missing field 'data'", e.Message);
        var affinity = Assert.Throws<WeakSegException>(() => run.ReadConfig<AffinityRunConfig>());
        Assert.Contains(run.ConfigPath, affinity.Message);
        Assert.Contains("unreadable run configuration", affinity.Message);
    }

    [Fact]
    public void A_user_written_affinity_configuration_without_a_format_is_read_as_the_current_one()
    {
        var text = AffinityConfigJson.Replace("\"format\": \"weakseg-affinity-1\",", "");
        var config = RunDirectory.ParseConfig<AffinityRunConfig>(text, "aff.json", unversionedIs: AffinityRunConfig.FormatVersion);
        Assert.Equal(5, config.Radius);
        Assert.Contains("missing field 'format_version'", Assert.Throws<WeakSegException>(() => RunDirectory.ParseConfig<AffinityRunConfig>(text, "aff.json")).Message);
        var twice = Assert.Throws<WeakSegException>(() => RunDirectory.ParseConfig<AffinityRunConfig>(text.Replace("\"radius\": 5,", "\"radius\": 5, \"radius\": 6,"), "aff.json"));
        Assert.Contains("key 'radius' is given twice", twice.Message);
    }

    [Fact]
    public void A_configuration_may_not_write_format_version_itself()
    {
        Assert.Throws<InvalidOperationException>(() => RunDirectory.ConfigText(new SelfVersioned()));
    }

    sealed record SelfVersioned : IRunConfig<SelfVersioned>
    {
        public static int FormatVersion => 1;
        public static string RunKind => "a test run";
        public JsonObject ToJson() => new() { ["format_version"] = 7 };
        public static SelfVersioned FromJson(JsonObject fields, int formatVersion, string path) => new();
    }
}
