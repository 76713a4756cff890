using TorchSharp;
using WeakSeg.Interop;
using WeakSeg.Methods.WeakTr;
using WeakSeg.Models.Vit;
using WeakSeg.Models.Weights;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods.WeakTr;

/// <summary>
/// Golden parity with the official WeakTr code (tests/fixtures/reference/README.md, cases <c>weaktr_aaf</c> and
/// <c>weaktr_model_tiny</c>). Everything runs through <see cref="WeakTrModel.Forward"/> and <see cref="WeakTrModel.ComputeLoss"/>,
/// the code that training and map generation use.
/// </summary>
[Collection("Torch")]
public class WeakTrReferenceFixtureTests
{
    const double Tolerance = 1e-4;

    static SafetensorsFile Aaf => SafetensorsFile.Read(TestPaths.Fixture("reference", "weaktr_aaf.safetensors"));
    static SafetensorsFile Tiny => SafetensorsFile.Read(TestPaths.Fixture("reference", "weaktr_model_tiny.safetensors"));

    /// <summary>The fixture's tiny WeakTr: K = 3 blocks, H = 4 heads, D = 32, patch 8, C = 5, AAF(channel 12, reduction 4,
    /// feats_channel 8, feat_reduction 2, pool max).</summary>
    public static WeakTrConfig TinyConfig(WeakTrFusion fusion = WeakTrFusion.Aaf) => new()
    {
        NumClasses = 5,
        Fusion = fusion,
        Pooling = WeakTrPooling.Max,
        FfnHidden = 3,
        FeatureReduction = 2,
        Backbone = new VitConfig
        {
            ImageSize = 32, PatchSize = 8, EmbedDim = 32, Depth = 3, NumHeads = 4, MlpRatio = 4, QkvBias = true,
            LayerNormEps = 1e-6, DropPathRate = 0,
        },
    };

    static WeakTrModel LoadTiny(WeakTrConfig? config = null)
    {
        var model = new WeakTrModel(config ?? TinyConfig());
        var report = TimmWeightImport.LoadFile(model, TestPaths.Fixture("reference", "weaktr_model_tiny.weights.safetensors"));
        Assert.Equal(["norm.bias", "norm.weight"], report.Missing.OrderBy(k => k, StringComparer.Ordinal));   // WeakTr applies no final norm
        Assert.Empty(report.Unexpected);
        Assert.Empty(report.Skipped);
        Assert.Equal(48, report.Loaded.Count);
        return model;
    }

    [Theory]
    [InlineData(WeakTrPooling.Average, "avg")]
    [InlineData(WeakTrPooling.Max, "max")]
    public void Aaf_module_matches_the_official_forward_weight_and_forward(WeakTrPooling pooling, string prefix)
    {
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var io = Aaf;
        using var fusion = new AdaptiveAttentionFusion(numHeadMaps: 12, hidden: 3, featureChannels: 8, featureHidden: 4);
        var report = TimmWeightImport.LoadFile(fusion, TestPaths.Fixture("reference", "weaktr_aaf.weights.safetensors"));
        Assert.Equal(6, report.Loaded.Count);
        Assert.Empty(report.Missing);

        var features = io.ToTorch("attn_feats");                                   // [2, 12, 21, 8]
        var maps = io.ToTorch("attn_weights");                                     // [2, 12, 21, 21]
        var pooled = WeakTrMaps.PoolFeatures(features, pooling, numClassTokens: 5, includeClassTokens: true);   // [2, 12, 8]
        TensorAssert.Close(io.ToTorch($"{prefix}_pooled").reshape(2, 12, 8), pooled, Tolerance, "pooled");
        var scalars = fusion.HeadScalars(pooled);
        TensorAssert.Close(io.ToTorch($"{prefix}_head_scalar").reshape(2, 12), scalars, Tolerance, "head scalars");
        var weights = fusion.WeightsFromFeatures(pooled);
        TensorAssert.Close(io.ToTorch($"{prefix}_weight").reshape(2, 12), weights, Tolerance, "weights");
        var expectedFused = io.ToTorch($"{prefix}_fused");                          // [2, 12, 21, 21] weighted maps
        TensorAssert.Close(expectedFused, maps.mul(weights.reshape(2, 12, 1, 1)), Tolerance, "weighted maps");
        // the model averages the weighted maps (1/(K·H) Σ)
        TensorAssert.Close(expectedFused.mean(new long[] { 1 }), WeakTrMaps.FuseHeads(maps, weights), Tolerance, "fused mean");
        // the head FFN's ReLU layer is active (else every weight would be sigmoid(0) = 0.5 and the test could not tell much)
        Assert.True(weights.sub(0.5).abs().max().item<float>() > 1e-2);
    }

    [Fact]
    public void Eval_forward_matches_the_official_model_on_a_square_input()
    {
        using var model = LoadTiny();
        model.eval();
        var io = Tiny;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var output = model.Forward(io.ToTorch("inputs"));
        var b = output.Backbone;

        TensorAssert.Close(io.ToTorch("x_cls"), b.ClassTokens, Tolerance, "x_cls");
        TensorAssert.Close(io.ToTorch("x_patch"), b.PatchTokens, Tolerance, "x_patch");
        TensorAssert.Close(io.ToTorch("block_attn"), b.StackedAttentions(), Tolerance, "block_attn");
        TensorAssert.Close(io.ToTorch("block_attn_out"), torch.stack(b.BlockAttentionOutputs, 0), Tolerance, "block_attn_out");
        TensorAssert.Close(io.ToTorch("aaf_in_weights"), WeakTrMaps.HeadMajorAttention(b.Attentions), Tolerance, "aaf_in_weights");
        TensorAssert.Close(io.ToTorch("aaf_in_feats"), WeakTrMaps.HeadMajorFeatures(b.BlockAttentionOutputs, 4, WeakTrFeatureGrouping.Interleaved),
            Tolerance, "aaf_in_feats");
        TensorAssert.Close(io.ToTorch("aaf_head_weight"), output.HeadWeights, Tolerance, "aaf_head_weight");
        Assert.True(output.HeadWeights.sub(0.5).abs().max().item<float>() > 1e-2);

        TensorAssert.Close(io.ToTorch("cls_token_pred"), output.ClassLogits, Tolerance, "cls_token_pred");
        TensorAssert.Close(io.ToTorch("coarse_map"), output.CoarseCam, Tolerance, "coarse_map");
        TensorAssert.Close(io.ToTorch("coarse_cam_pred"), output.CoarseLogits, Tolerance, "coarse_cam_pred");
        TensorAssert.Close(io.ToTorch("cams_cross"), output.CrossAttention, Tolerance, "cams_cross");
        TensorAssert.Close(io.ToTorch("cams_patchcam"), output.CoarseCam.relu(), Tolerance, "cams_patchcam");
        TensorAssert.Close(io.ToTorch("cams_fused"), output.CrossAttention.mul(output.CoarseCam.relu()), Tolerance, "cams_fused");
        TensorAssert.Close(io.ToTorch("patch_attn").squeeze(0), output.PatchAttention, Tolerance, "patch_attn");
        TensorAssert.Close(io.ToTorch("fine_cam"), output.FineCam, Tolerance, "fine_cam");
        TensorAssert.Close(io.ToTorch("fine_cam_pred"), output.FineLogits, Tolerance, "fine_cam_pred");

        // quirk "identical cross/patch outputs": ĈA and P̂A are blocks of one weighted mean of the fixture's weighted maps
        var fused = io.ToTorch("aaf_fused").mean(new long[] { 1 });                 // [B, T, T]
        TensorAssert.Close(fused.narrow(1, 0, 5).narrow(2, 5, 16).reshape(2, 5, 4, 4), output.CrossAttention, Tolerance, "ĈA from the fused map");
        TensorAssert.Close(fused.narrow(1, 5, 16).narrow(2, 5, 16), output.PatchAttention, Tolerance, "P̂A from the same fused map");
    }

    [Fact]
    public void Eval_forward_matches_the_official_model_on_a_non_square_input()
    {
        using var model = LoadTiny();
        model.eval();
        var io = Tiny;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var output = model.Forward(io.ToTorch("inputs_32x48"));
        Assert.Equal(4, output.Backbone.GridHeight);
        Assert.Equal(6, output.Backbone.GridWidth);
        TensorAssert.Close(io.ToTorch("ns_cls_token_pred"), output.ClassLogits, Tolerance, "ns_cls_token_pred");
        TensorAssert.Close(io.ToTorch("ns_coarse_map"), output.CoarseCam, Tolerance, "ns_coarse_map");
        TensorAssert.Close(io.ToTorch("ns_coarse_cam_pred"), output.CoarseLogits, Tolerance, "ns_coarse_cam_pred");
        TensorAssert.Close(io.ToTorch("ns_cams_fused"), output.CrossAttention.mul(output.CoarseCam.relu()), Tolerance, "ns_cams_fused");
        TensorAssert.Close(io.ToTorch("ns_patch_attn").squeeze(0), output.PatchAttention, Tolerance, "ns_patch_attn");
        TensorAssert.Close(io.ToTorch("ns_fine_cam"), output.FineCam, Tolerance, "ns_fine_cam");
        TensorAssert.Close(io.ToTorch("ns_fine_cam_pred"), output.FineLogits, Tolerance, "ns_fine_cam_pred");
    }

    [Fact]
    public void Position_embedding_follows_the_dino_scale_factor_rule()
    {
        using var model = LoadTiny();
        var io = Tiny;
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        TensorAssert.Close(io.ToTorch("pos_embed_32x48"), model.PositionEmbeddingFor(4, 6), Tolerance, "pos_embed_32x48");
        TensorAssert.Close(io.ToTorch("pos_embed_40x40"), model.PositionEmbeddingFor(5, 5), Tolerance, "pos_embed_40x40");
    }

    [Fact]
    public void Training_loss_matches_the_official_train_one_epoch()
    {
        using var model = LoadTiny();
        model.train();   // the fixture's train mode has no dropout or drop-path
        var io = Tiny;
        using var scope = torch.NewDisposeScope();
        var terms = model.ComputeLoss(io.ToTorch("inputs"), io.ToTorch("labels"));
        TensorAssert.Close(io.ToTorch("train_loss").reshape(new long[0]), terms.Total, Tolerance, "train_loss");
        var parts = terms.Parts.ToDictionary(p => p.Name, p => p.Value);
        TensorAssert.Close(io.ToTorch("train_cls_loss").reshape(new long[0]), parts["cls"], Tolerance, "cls (class tokens)");
        TensorAssert.Close(io.ToTorch("train_pat_loss").reshape(new long[0]), parts["coarse"], Tolerance, "coarse CAM");
        TensorAssert.Close(io.ToTorch("train_attn_loss").reshape(new long[0]), parts["fine"], Tolerance, "fine CAM");
    }

    [Fact]
    public void Fine_cam_loss_reaches_only_the_fusion_ffns_and_the_other_losses_never_reach_them()
    {
        using var model = LoadTiny();
        model.train();
        var io = Tiny;
        using var scope = torch.NewDisposeScope();
        var terms = model.ComputeLoss(io.ToTorch("inputs"), io.ToTorch("labels"));
        var parts = terms.Parts.ToDictionary(p => p.Name, p => p.Value);

        model.zero_grad();
        parts["fine"].backward(retain_graph: true);
        foreach (var (name, p) in model.named_parameters())
        {
            bool fusion = name.StartsWith("adaptive_attention_fusion.", StringComparison.Ordinal);
            double norm = p.grad is null ? 0 : p.grad.abs().sum().item<float>();
            if (fusion) Assert.True(norm > 0, $"{name} gets no gradient from the fine-CAM loss");
            else Assert.True(norm == 0, $"{name} gets a gradient ({norm}) from the fine-CAM loss");
        }

        model.zero_grad();
        parts["cls"].add(parts["coarse"]).backward();
        foreach (var (name, p) in model.named_parameters())
            if (name.StartsWith("adaptive_attention_fusion.", StringComparison.Ordinal))
                Assert.True(p.grad is null || p.grad.abs().sum().item<float>() == 0, $"{name} gets a gradient from the other losses");
        Assert.True(model.named_parameters().First(p => p.name == "head.weight").parameter.grad!.abs().sum().item<float>() > 0);
    }

    [Theory]
    [InlineData("ms_cam", new[] { 1.0, 1.25 }, true)]
    [InlineData("ss_cam", new[] { 1.0 }, false)]   // the official image list [s1] alone: one view, no flip
    public void Multi_scale_flip_fine_cams_match_the_official_map_generation(string name, double[] scales, bool flip)
    {
        // The official generate_attention_maps_ms: per view the fine CAM, bilinear to the image, × label, un-flipped, summed; then each
        // present class min-max normalised. WeakSeg sums the same views with the shared MultiScaleCam (the 1.25 view is the bilinear
        // 40×40 resize, as the fixture's s2); the min-max step is applied here only to compare (WeakSeg's own maps are divided by
        // their maximum instead).
        using var model = LoadTiny();
        var io = Tiny;
        using var scope = torch.NewDisposeScope();
        var image = io.ToTorch("ms_image_s1");
        var label = io.ToTorch("ms_label")[0];                                     // [5]
        var sum = WeakSeg.Methods.Localization.MultiScaleCam.Accumulate(model, 8, image, scales, flip, views =>
        {
            using var output = model.Forward(views);
            return output.FineCam.relu();                                           // what the method's refined map returns
        });                                                                          // [5, 32, 32]
        var expected = io.ToTorch(name);
        Assert.Equal(32, expected.shape[2]);
        TinyModelChecks.AssertMatchesOfficialMinMaxMaps(expected, sum, label, Tolerance, name);
    }

    [Fact]
    public void Contiguous_grouping_takes_each_heads_own_channel_slice()
    {
        using var scope = torch.NewDisposeScope();
        var io = Tiny;
        var outputs = io.ToTorch("block_attn_out");                                  // [K, B, T, D]
        var perBlock = Enumerable.Range(0, 3).Select(k => outputs[k]).ToList();
        var contiguous = WeakTrMaps.HeadMajorFeatures(perBlock, 4, WeakTrFeatureGrouping.Contiguous);
        var interleaved = WeakTrMaps.HeadMajorFeatures(perBlock, 4, WeakTrFeatureGrouping.Interleaved);
        for (int h = 0; h < 4; h++)
            for (int k = 0; k < 3; k++)
            {
                TensorAssert.Close(outputs[k].narrow(2, h * 8, 8), contiguous.select(1, h * 3 + k), 0, $"contiguous map {h * 3 + k}");
                var channels = torch.tensor(Enumerable.Range(0, 8).Select(j => (long)(j * 4 + h)).ToArray());
                TensorAssert.Close(outputs[k].index_select(2, channels), interleaved.select(1, h * 3 + k), 0, $"interleaved map {h * 3 + k}");
            }
        Assert.True(contiguous.sub(interleaved).abs().max().item<float>() > 1e-3);

        // the option reaches the model: its head weights now differ from the official ones
        using var model = LoadTiny(TinyConfig() with { FeatureGrouping = WeakTrFeatureGrouping.Contiguous });
        model.eval();
        using var noGrad = torch.no_grad();
        using var output = model.Forward(io.ToTorch("inputs"));
        var expected = WeightsByHand(model, output.Backbone, WeakTrFeatureGrouping.Contiguous, includeClassTokens: true);
        TensorAssert.Close(expected, output.HeadWeights, 1e-5, "contiguous head weights");
        Assert.True(output.HeadWeights.sub(io.ToTorch("aaf_head_weight")).abs().max().item<float>() > 1e-4);
    }

    [Fact]
    public void Pooling_patch_tokens_only_leaves_the_class_tokens_out()
    {
        using var scope = torch.NewDisposeScope();
        var io = Tiny;
        var features = io.ToTorch("aaf_in_feats");                                   // [B, 12, T = 21, 8]
        var patchesOnly = WeakTrMaps.PoolFeatures(features, WeakTrPooling.Average, 5, includeClassTokens: false);
        // brute force: mean over tokens 5..20
        var data = features.data<float>().ToArray();
        for (int b = 0; b < 2; b++)
            for (int m = 0; m < 12; m++)
                for (int j = 0; j < 8; j++)
                {
                    double sum = 0;
                    for (int t = 5; t < 21; t++) sum += data[((b * 12 + m) * 21 + t) * 8 + j];
                    Assert.True(Math.Abs(sum / 16 - patchesOnly[b, m, j].item<float>()) < 1e-5, $"pooled [{b}, {m}, {j}]");
                }

        using var model = LoadTiny(TinyConfig() with { PoolClassTokens = false });
        model.eval();
        using var noGrad = torch.no_grad();
        using var output = model.Forward(io.ToTorch("inputs"));
        var expected = WeightsByHand(model, output.Backbone, WeakTrFeatureGrouping.Interleaved, includeClassTokens: false);
        TensorAssert.Close(expected, output.HeadWeights, 1e-5, "patch-token pooling head weights");
        Assert.True(output.HeadWeights.sub(io.ToTorch("aaf_head_weight")).abs().max().item<float>() > 1e-4);
    }

    /// <summary>The two FFNs applied with explicit weight matrices (no module call): W' = σ(W2 · ReLU(W1 · (v1 · (V0 · pooled + b0) + b1))).</summary>
    static Tensor WeightsByHand(WeakTrModel model, VitOutput backbone, WeakTrFeatureGrouping grouping, bool includeClassTokens)
    {
        var features = WeakTrMaps.HeadMajorFeatures(backbone.BlockAttentionOutputs, 4, grouping);
        var tokens = includeClassTokens ? features : features.narrow(2, 5, features.shape[2] - 5);
        var pooled = tokens.amax(new long[] { 2 });                                  // pool max (the fixture's)
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        var hidden = torch.matmul(pooled, p["adaptive_attention_fusion.attn_feat_ffn.0.weight"].t()).add(p["adaptive_attention_fusion.attn_feat_ffn.0.bias"]);
        var scalar = torch.matmul(hidden, p["adaptive_attention_fusion.attn_feat_ffn.1.weight"].t()).add(p["adaptive_attention_fusion.attn_feat_ffn.1.bias"]).squeeze(-1);
        var h1 = torch.matmul(scalar, p["adaptive_attention_fusion.attn_head_ffn.0.weight"].t()).relu();
        return torch.matmul(h1, p["adaptive_attention_fusion.attn_head_ffn.2.weight"].t()).sigmoid();
    }
}
