using TorchSharp;
using WeakSeg.Interop;
using WeakSeg.Methods;
using WeakSeg.Methods.Localization;
using WeakSeg.Methods.MctFormerPlus;
using WeakSeg.Models.Vit;
using WeakSeg.Tests.Support;
using WeakSeg.Training;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.MctFormerPlus;

/// <summary>
/// Golden parity with the official MCTformer+ code (tests/fixtures/reference/README.md, case <c>mctformer_plus_tiny</c>). Everything
/// runs through <see cref="MctFormerPlusModel.Forward"/>, <see cref="MctFormerPlusMaps.Localize"/> and
/// <see cref="MctFormerPlusMethod.ComputeLoss"/>, the code that training and map generation use.
/// </summary>
[Collection("Torch")]
public class MctFormerPlusReferenceFixtureTests
{
    const double Tolerance = 1e-4;

    static SafetensorsFile Tiny => SafetensorsFile.Read(TestPaths.Fixture("reference", "mctformer_plus_tiny.safetensors"));

    /// <summary>The fixture's tiny MCTformer+: 3 blocks, 4 heads, D = 32, patch 8, C = 5, input 32 (4×4 patches), decay 0.996, all
    /// 3 layers for the maps and the CCT loss.</summary>
    public static MctFormerPlusConfig TinyConfig => new()
    {
        NumClasses = 5,
        Backbone = MctFormerPlusConfig.WithPatchResize(new VitConfig
        {
            ImageSize = 32, PatchSize = 8, EmbedDim = 32, Depth = 3, NumHeads = 4, MlpRatio = 4, QkvBias = true, LayerNormEps = 1e-6, DropPathRate = 0,
        }),
    };

    static MctFormerPlusMethod LoadTiny(MctFormerPlusConfig? config = null)
    {
        var method = new MctFormerPlusMethod(config ?? TinyConfig);
        var report = ((IWsssMethod)method).ImportTimmWeights(TestPaths.Fixture("reference", "mctformer_plus_tiny.weights.safetensors"));
        Assert.Equal(["norm.bias", "norm.weight"], report.Missing.OrderBy(k => k, StringComparer.Ordinal));   // no final norm in MCTformer+
        Assert.Empty(report.Unexpected);
        Assert.Empty(report.Skipped);
        Assert.Equal(43, report.Loaded.Count);
        return method;
    }

    static Tensor Scalar(SafetensorsFile io, string name) => io.ToTorch(name).reshape(new long[0]);

    /// <summary>The tiny model loaded with the fixture weights, in eval mode under no_grad, and its forward pass on fixture input
    /// <c>input</c>; disposing frees all of it.</summary>
    sealed class EvalForward : IDisposable
    {
        readonly DisposeScope scope;
        readonly IDisposable noGrad;

        public EvalForward(string input, MctFormerPlusConfig? config = null)
        {
            Method = LoadTiny(config);
            Method.Network.eval();
            scope = torch.NewDisposeScope();
            noGrad = torch.no_grad();
            Input = Io.ToTorch(input);
            Output = Method.Network.Forward(Input);
        }

        public SafetensorsFile Io { get; } = Tiny;
        public MctFormerPlusMethod Method { get; }
        public Tensor Input { get; }
        public MctFormerPlusOutput Output { get; }

        public void Dispose()
        {
            Output.Dispose();
            noGrad.Dispose();
            scope.Dispose();
            Method.Dispose();
        }
    }

    [Fact]
    public void Eval_forward_matches_the_official_logits_tokens_attention_and_gwrp()
    {
        using var run = new EvalForward("inputs");
        var (io, output) = (run.Io, run.Output);
        Assert.Equal(3, output.Backbone.BlockClassTokens.Count);
        TensorAssert.Close(io.ToTorch("cls_logits"), output.ClassLogits, Tolerance, "cls_logits");
        TensorAssert.Close(io.ToTorch("class_tokens_all"), output.StackedClassTokens(), Tolerance, "class_tokens_all");
        TensorAssert.Close(io.ToTorch("x_patch"), output.Backbone.PatchTokens, Tolerance, "x_patch");
        TensorAssert.Close(io.ToTorch("attn"), output.Backbone.StackedAttentions(), Tolerance, "attn");
        TensorAssert.Close(io.ToTorch("patch_cam"), output.PatchCam, Tolerance, "patch_cam");
        TensorAssert.Close(io.ToTorch("patch_logits"), output.PatchLogits, Tolerance, "patch_logits (GWRP 0.996)");
        TensorAssert.Close(io.ToTorch("ra_logits"), output.ClassLogits.add(output.PatchLogits).div(2), Tolerance, "ra_logits");
        // GWRP is not average pooling here: the 0.996 weights make a measurable difference on 16 patches
        Assert.True(output.PatchLogits.sub(output.PatchCam.mean(new long[] { 2, 3 })).abs().max().item<float>() > 1e-3);
    }

    [Fact]
    public void Gwrp_with_another_decay_matches_the_official_decay_parameter()
    {
        using var run = new EvalForward("inputs", TinyConfig with { GwrpDecay = 0.5 });
        var (io, output) = (run.Io, run.Output);
        TensorAssert.Close(io.ToTorch("patch_logits_decay05"), output.PatchLogits, Tolerance, "patch_logits_decay05");
        TensorAssert.Close(io.ToTorch("patch_logits_decay05"), MctFormerPlusModel.GlobalWeightedRankingPooling(io.ToTorch("patch_cam"), 0.5), Tolerance, "from the fixture's PatchCAM");
    }

    [Theory]
    [InlineData(null, "cams_fused")]
    [InlineData(2, "cams_fused_nlayers2")]
    public void Maps_match_the_official_attention_types(int? camLayers, string fusedName)
    {
        using var run = new EvalForward("inputs", TinyConfig with { CamLayers = camLayers });
        var (io, output, method, inputs) = (run.Io, run.Output, run.Method, run.Input);
        using var maps = MctFormerPlusMaps.Localize(output, method.MethodConfig.MapLayers);
        TensorAssert.Close(io.ToTorch(fusedName), maps.Fused, Tolerance, fusedName);
        TensorAssert.Close(io.ToTorch("cams_patchcam"), maps.PatchCam, Tolerance, "cams_patchcam");
        if (camLayers is null) TensorAssert.Close(io.ToTorch("cams_mct"), maps.ClassToPatch, Tolerance, "cams_mct (mean of all layers)");
        // patch_attn covers every layer whatever the map layers; the refinement sums it
        var patchAttention = io.ToTorch("patch_attn");                                      // [L, B, N, N]
        TensorAssert.Close(patchAttention.sum(new long[] { 0 }), maps.PatchAffinity, Tolerance, "Σ_layers patch_attn");
        var expectedRefined = torch.matmul(patchAttention.sum(new long[] { 0 }).unsqueeze(1), io.ToTorch(fusedName).reshape(2, 5, 16, 1)).reshape(2, 5, 4, 4);
        TensorAssert.Close(expectedRefined, maps.Refined, Tolerance, "refined");

        // The method's map kinds are these tensors.
        foreach (var (kind, expected) in new[] { (LocalizationMapKind.Fused, maps.Fused), (LocalizationMapKind.PatchCam, maps.PatchCam),
                     (LocalizationMapKind.ClassToPatch, maps.ClassToPatch), (LocalizationMapKind.Refined, maps.Refined) })
            TensorAssert.Close(expected, method.PatchGridMaps(inputs, kind), 0, LocalizationMapKindNames.Name(kind));
    }

    [Fact]
    public void Non_square_input_matches_the_official_model_and_its_position_embedding()
    {
        using var run = new EvalForward("inputs_32x48");
        var (io, output, model) = (run.Io, run.Output, run.Method.Network);
        Assert.Equal(4, output.Backbone.GridHeight);
        Assert.Equal(6, output.Backbone.GridWidth);
        TensorAssert.Close(io.ToTorch("ns_cls_logits"), output.ClassLogits, Tolerance, "ns_cls_logits");
        TensorAssert.Close(io.ToTorch("ns_patch_cam"), output.PatchCam, Tolerance, "ns_patch_cam");
        TensorAssert.Close(io.ToTorch("ns_patch_logits"), output.PatchLogits, Tolerance, "ns_patch_logits");
        using var maps = MctFormerPlusMaps.Localize(output, 3);
        TensorAssert.Close(io.ToTorch("ns_cams_fused"), maps.Fused, Tolerance, "ns_cams_fused");
        TensorAssert.Close(io.ToTorch("ns_patch_attn").sum(new long[] { 0 }), maps.PatchAffinity, Tolerance, "ns_patch_attn");

        // class rows unchanged, patch rows resized bicubically to 4×6 (the official scale factor (4/4, 6/4), no +0.1)
        var position = model.PositionEmbeddingFor(4, 6);                                   // [1, 5 + 24, D]
        TensorAssert.Close(io.ToTorch("pos_embed_pat_32x48"), position.narrow(1, 5, 24), Tolerance, "pos_embed_pat_32x48");
        TensorAssert.Close(model.ClassPositionEmbeddingParameter!, position.narrow(1, 0, 5), 0, "class rows");
        // the DINO rule (+0.1) of MCTformer-V2 would differ: the resize rule matters here
        var dino = PositionEmbedding.Resize(model.PatchPositionEmbeddingParameter!, 0, 4, 6, PositionEmbeddingResize.DinoScaleFactor);
        Assert.True(dino.sub(io.ToTorch("pos_embed_pat_32x48")).abs().max().item<float>() > 1e-2);
    }

    [Theory]
    [InlineData(null, "train_loss", "train_attn_loss")]
    [InlineData(2, "train_loss_num_cct2", "train_attn_loss_num_cct2")]
    public void Training_loss_matches_the_official_train_one_epoch(int? cctLayers, string totalName, string cctName)
    {
        using var method = LoadTiny(TinyConfig with { CctLayers = cctLayers });
        method.Network.train();   // the fixture's train mode has no dropout or drop-path
        var io = Tiny;
        using var scope = torch.NewDisposeScope();
        var batch = new TrainBatch(io.ToTorch("inputs"), io.ToTorch("labels"));
        var terms = method.ComputeLoss(batch, new TrainStepContext(0, 1, 1e-3, new Random(0)));
        var parts = terms.Parts.ToDictionary(p => p.Name, p => p.Value);
        TensorAssert.Close(Scalar(io, totalName), terms.Total, Tolerance, totalName);
        TensorAssert.Close(Scalar(io, "train_mct_loss"), parts["cls"], Tolerance, "cls (class tokens)");
        TensorAssert.Close(Scalar(io, cctName), parts["cct"], Tolerance, cctName);
        TensorAssert.Close(Scalar(io, "train_pat_loss"), parts["patch"], Tolerance, "patch (GWRP)");
        // the contrastive loss is a real part of the total: it reaches every block's class tokens
        terms.Total.backward();
        Assert.True(method.Network.ClassPositionEmbeddingParameter!.grad!.abs().sum().item<float>() > 0);
        Assert.True(method.Network.PatchPositionEmbeddingParameter!.grad!.abs().sum().item<float>() > 0);
    }

    [Theory]
    [InlineData("ms_cam", new[] { 1.0, 1.25 }, true)]
    [InlineData("ss_cam", new[] { 1.0 }, false)]   // the official image list [s1] alone: one view, no flip
    public void Multi_scale_flip_maps_match_the_official_map_generation(string name, double[] scales, bool flip)
    {
        // The official generate_attention_maps_ms (attention type fused, patch_attn_refine): per view Σ_layers patch_attn · fused,
        // bilinear to the image, × label, un-flipped, summed; then each present class min-max normalised. WeakSeg sums the same views
        // with the shared MultiScaleCam (the 1.25 view is the bilinear 40×40 resize, as the fixture's s2: a 5×5 grid, so the patch
        // position embedding is resized); the min-max step is applied here only to compare (WeakSeg divides by the maximum).
        using var method = LoadTiny();
        var io = Tiny;
        using var scope = torch.NewDisposeScope();
        var image = io.ToTorch("ms_image_s1");
        var label = io.ToTorch("ms_label")[0];
        var sum = MultiScaleCam.Accumulate(method.Network, 8, image, scales, flip, views => method.PatchGridMaps(views, LocalizationMapKind.Refined));
        var expected = io.ToTorch(name);
        TinyModelChecks.AssertMatchesOfficialMinMaxMaps(expected, sum, label, Tolerance, name);
    }
}
