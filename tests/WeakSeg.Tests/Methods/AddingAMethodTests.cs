using TorchSharp;
using TorchSharp.Modules;
using WeakSeg.Evaluation;
using WeakSeg.Methods;
using WeakSeg.Methods.Localization;
using WeakSeg.Models.Vit;
using WeakSeg.Pipelines;
using WeakSeg.Tests.Pipelines;
using WeakSeg.Tests.Support;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods;

/// <summary>
/// What adding a method takes: a config record, a model and a method class (here in this one file, as a method's folder would
/// hold them) and one registration line. Nothing else in the repository changes: training, the run folder, loading and maps
/// work through the generic path.
/// </summary>
[Collection("Torch")]
public class AddingAMethodTests
{
    /// <summary>"Patch logits": a linear classifier on every patch token; image logits = their spatial mean; map = ReLU(patch logits).</summary>
    public sealed record PatchLogitsConfig : IMethodConfig<PatchLogitsConfig>
    {
        public int NumClasses { get; init; }
        public VitConfig Backbone { get; init; } = VitConfig.Small;
        public static PatchLogitsConfig Paper => new();
        public static PatchLogitsConfig Cpu => new() { Backbone = VitConfig.Cpu128x4 };
        public VitConfig BackboneConfig => Backbone with { NumClassTokens = 1 };
        string IMethodConfig.Title => "patch-logits";
        public PatchLogitsConfig WithNumClasses(int numClasses) => this with { NumClasses = numClasses };
        public PatchLogitsConfig WithImageSize(int imageSize) => this with { Backbone = Backbone with { ImageSize = imageSize } };
        public IReadOnlyList<string> Validate() => this.CommonErrors();
    }

    public sealed class PatchLogitsModel : VisionTransformer
    {
        readonly Linear head;

        public PatchLogitsModel(PatchLogitsConfig config) : base(config.BackboneConfig, "PatchLogits")
        {
            head = nn.Linear(config.Backbone.EmbedDim, config.NumClasses);
            register_module(nameof(head), head);
        }

        /// <summary>images [B, 3, H, W] → per-patch logits [B, K, h, w].</summary>
        public Tensor PatchLogits(Tensor images)
        {
            using var scope = torch.NewDisposeScope();
            using var tokens = ForwardFeatures(images);
            var logits = head.call(tokens.PatchTokens);                                               // [B, N, K]
            return logits.transpose(1, 2).reshape(logits.shape[0], logits.shape[2], tokens.GridHeight, tokens.GridWidth).MoveToOuterDisposeScope();
        }
    }

    public sealed class PatchLogitsMethod(PatchLogitsConfig config)
        : WsssMethodBase<PatchLogitsConfig, PatchLogitsModel>(config, new PatchLogitsModel(config))
    {
        public const string MethodName = "test-patch-logits";
        public override string Name => MethodName;

        public override LossTerms ComputeLoss(TrainBatch batch, TrainStepContext context) =>
            new(ClassificationLoss.MultilabelSoftMargin(TypedModel.PatchLogits(batch.Images).mean([2, 3]), batch.Labels));

        public override Tensor PatchGridMaps(Tensor images, LocalizationMapKind kind) => TypedModel.PatchLogits(images).relu();
    }

    [Fact]
    public void A_method_registered_in_one_line_trains_saves_loads_and_writes_maps()
    {
        // The one line.
        MethodRegistry.Register<PatchLogitsConfig>(PatchLogitsMethod.MethodName, "test: patch logits", new([LocalizationMapKind.Fused], LocalizationMapKind.Fused, LocalizationMapKind.Fused), c => new PatchLogitsMethod(c));

        using var dir = TestPaths.NewTempDir();
        var data = PipelineTestData.MakeData(dir.File("data"));
        var recipe = TrainRecipe.Preset(PatchLogitsMethod.MethodName, MethodPreset.Cpu).For(PipelineTestData.Classes)
            .With("model.backbone={\"image_size\": 32, \"patch_size\": 8, \"embed_dim\": 16, \"depth\": 2, \"num_heads\": 2}")
            .With("trainer.steps=2").With("trainer.batch_size=4").With("trainer.warmup_steps=1").With("trainer.threads=2");
        var run = dir.File("run");
        var outcome = TrainPipeline.Run(new TrainRequest { DataRoot = data, RunDirectory = run, Recipe = recipe });
        Assert.True(outcome.Result.Completed);
        Assert.Equal(2, outcome.Result.Step);
        Assert.True(float.IsFinite((float)outcome.Result.LastLoss));

        // The run folder names the method and its config record; loading builds it back through the registry.
        using (var loaded = TrainPipeline.LoadTrained(run, out var config))
        {
            Assert.Equal(PatchLogitsMethod.MethodName, loaded.Name);
            var typed = Assert.IsType<PatchLogitsConfig>(config.Recipe.ModelConfig);
            Assert.Equal(PipelineTestData.Classes, typed.NumClasses);
            Assert.Equal(16, typed.Backbone.EmbedDim);
        }

        var maps = dir.File("maps");
        var summary = CamPipeline.Run(new CamRequest
        {
            RunDirectory = run, OutDirectory = maps, Localization = new LocalizationOptions { MapKind = LocalizationMapKind.Fused, Scales = [1.0] }, Threads = 2,
        });
        Assert.Equal(8, summary.Written);
        var dataset = WeakSeg.Data.VocDataset.Open(data, "train");
        var first = CamMapFile.Read(maps, dataset.Samples[0].Name);
        Assert.Equal(dataset.Samples[0].Classes, first.Classes);
        Assert.All(first.Maps, v => Assert.InRange(v, 0f, 1f));

        // What the registration says the method cannot do is refused before any work, naming the map.
        var e = Assert.Throws<WeakSegException>(() => CamPipeline.Run(new CamRequest
        {
            RunDirectory = run, OutDirectory = dir.File("refined"), Localization = new LocalizationOptions { MapKind = LocalizationMapKind.Refined },
        }));
        Assert.Contains("has no refined map (it has: fused)", e.Message);
    }
}
