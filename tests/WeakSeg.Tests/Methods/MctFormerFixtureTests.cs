using TorchSharp;
using WeakSeg.Interop;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Models.Vit;
using WeakSeg.Models.Weights;
using WeakSeg.Training;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods;

/// <summary>Golden parity with the independent PyTorch reference (tests/fixtures/mctformer_v2/README.md).</summary>
[Collection("Torch")]
public class MctFormerFixtureTests
{
    const double Tolerance = 1e-4;

    static MctFormerConfig FixtureConfig => new()
    {
        Variant = MctFormerVariant.V2,
        NumClasses = 5,
        CamLayers = 2,
        Backbone = new VitConfig { ImageSize = 32, PatchSize = 8, EmbedDim = 64, Depth = 3, NumHeads = 4, DropPathRate = 0 },
    };

    static MctFormerModel LoadFixtureModel(out WeightImportReport report)
    {
        var model = new MctFormerModel(FixtureConfig);
        report = TimmWeightImport.LoadFile(model, TestPaths.Fixture("mctformer_v2", "vit_mct_v2.weights.safetensors"));
        return model;
    }

    static SafetensorsFile Io => SafetensorsFile.Read(TestPaths.Fixture("mctformer_v2", "vit_mct_v2.io.safetensors"));

    [Fact]
    public void Fixture_weights_load_completely()
    {
        using var model = LoadFixtureModel(out var report);
        Assert.Empty(report.Missing);
        Assert.Empty(report.Unexpected);
        Assert.Empty(report.Skipped);
        Assert.Equal(44, report.Loaded.Count);   // every key in the fixture file
        using var file = new DisposableDictionary(SafetensorsFile.Read(TestPaths.Fixture("mctformer_v2", "vit_mct_v2.weights.safetensors")).ToTorchDictionary());
        TensorAssert.Close(file["pos_embed"], model.PositionEmbeddingParameter, 0, "pos_embed");
    }

    [Theory]
    [InlineData(32)]
    [InlineData(48)]
    public void Eval_forward_and_maps_match_the_reference(int size)
    {
        using var model = LoadFixtureModel(out var _);
        model.eval();
        var io = Io;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var input = io.ToTorch($"input_{size}");
        using var output = model.Forward(input);
        TensorAssert.Close(io.ToTorch($"cls_logits_{size}"), output.ClassLogits, Tolerance, "cls_logits");
        TensorAssert.Close(io.ToTorch($"patch_cam_{size}"), output.PatchCam!, Tolerance, "patch_cam");
        TensorAssert.Close(io.ToTorch($"patch_logits_{size}"), output.PatchLogits!, Tolerance, "patch_logits");
        TensorAssert.Close(io.ToTorch($"attn_{size}"), output.Backbone.StackedAttentions(), Tolerance, "attn");

        using var maps = MctFormerMaps.Localize(output, FixtureConfig.CamLayers);
        TensorAssert.Close(io.ToTorch($"cams_{size}"), maps.Maps, Tolerance, "cams");
        TensorAssert.Close(io.ToTorch($"patch_attn_{size}"), maps.PatchAffinity, Tolerance, "patch_attn");
        TensorAssert.Close(io.ToTorch($"cams_refined_{size}"), maps.Refined, Tolerance, "cams_refined");
    }

    /// <summary>The loss exactly as training computes it: the method's <see cref="MctFormerMethod.ComputeLoss"/>, which the trainer calls.</summary>
    [Fact]
    public void Loss_and_gradients_match_the_reference()
    {
        using var method = new MctFormerMethod(FixtureConfig);
        TimmWeightImport.LoadFile(method.Model, TestPaths.Fixture("mctformer_v2", "vit_mct_v2.weights.safetensors"));
        var model = method.Model;
        model.train();
        var io = Io;
        using var scope = torch.NewDisposeScope();
        var input = io.ToTorch("input_32");
        var labels = io.ToTorch("labels_32");
        model.zero_grad();
        ITrainable trainable = method;
        var terms = trainable.ComputeLoss(new TrainBatch(input, labels), new TrainStepContext(0, 1, 1e-3, new Random(0)));
        var loss = terms.Total;
        TensorAssert.Close(io.ToTorch("loss_32").reshape(new long[0]), loss, Tolerance, "loss");
        Assert.Equal(["cls", "patch"], terms.Parts.Select(p => p.Name));
        loss.backward();
        var parameters = model.named_parameters().ToDictionary(p => p.name, p => p.parameter);
        foreach (var key in new[] { "cls_token", "blocks.0.attn.qkv.weight", "head.weight", "pos_embed" })
        {
            var grad = parameters[key].grad;
            Assert.NotNull(grad);
            TensorAssert.Close(io.ToTorch("grad." + key), grad!, Tolerance, "grad." + key);
        }
    }

    sealed class DisposableDictionary(Dictionary<string, Tensor> inner) : IDisposable
    {
        public Tensor this[string key] => inner[key];
        public void Dispose() { foreach (var t in inner.Values) t.Dispose(); }
    }
}
