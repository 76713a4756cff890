using TorchSharp;
using WeakSeg.Models.Vit;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Models;

[Collection("Torch")]
public class VisionTransformerTests
{
    static VitConfig Tiny(int classTokens = 2) => new()
    {
        ImageSize = 16, PatchSize = 8, EmbedDim = 8, Depth = 2, NumHeads = 2, NumClassTokens = classTokens, DropPathRate = 0,
    };

    [Fact]
    public void Presets_have_the_deit_sizes()
    {
        Assert.Equal((192, 12, 3), (VitConfig.Tiny.EmbedDim, VitConfig.Tiny.Depth, VitConfig.Tiny.NumHeads));
        Assert.Equal((384, 12, 6), (VitConfig.Small.EmbedDim, VitConfig.Small.Depth, VitConfig.Small.NumHeads));
        Assert.Equal((768, 12, 12), (VitConfig.Base.EmbedDim, VitConfig.Base.Depth, VitConfig.Base.NumHeads));
        Assert.Equal(VitConfig.Small, VitConfig.FromPreset("deit-small"));
        Assert.Equal((16, 4.0, true, 1e-6, 14), (VitConfig.Small.PatchSize, VitConfig.Small.MlpRatio, VitConfig.Small.QkvBias, VitConfig.Small.LayerNormEps, VitConfig.Small.GridSize));
        Assert.Throws<WeakSegException>(() => VitConfig.FromPreset("huge"));
    }

    [Fact]
    public void Validation_names_the_field()
    {
        var errors = (VitConfig.Small with { EmbedDim = 100, NumHeads = 6, ImageSize = 200 }).Validate();
        Assert.Contains(errors, e => e.Contains("EmbedDim (100) must be divisible by NumHeads (6)"));
        Assert.Contains(errors, e => e.Contains("ImageSize must be a multiple of PatchSize"));
        Assert.Throws<WeakSegException>(() => new VisionTransformer(VitConfig.Small with { NumClassTokens = 0 }));
    }

    [Fact]
    public void Parameter_names_are_the_timm_keys()
    {
        using var model = new VisionTransformer(Tiny());
        var names = model.named_parameters().Select(p => p.name).ToHashSet();
        foreach (var key in new[] { "cls_token", "pos_embed", "patch_embed.proj.weight", "patch_embed.proj.bias", "blocks.0.norm1.weight",
                     "blocks.1.attn.qkv.weight", "blocks.1.attn.qkv.bias", "blocks.1.attn.proj.weight", "blocks.0.norm2.bias",
                     "blocks.0.mlp.fc1.weight", "blocks.0.mlp.fc2.bias", "norm.weight", "norm.bias" })
            Assert.Contains(key, names);
        Assert.Equal(4 + 12 * 2 + 2, names.Count);
        Assert.Equal(new long[] { 1, 2, 8 }, model.ClassTokenParameter.shape);
        Assert.Equal(new long[] { 1, 2 + 4, 8 }, model.PositionEmbeddingParameter.shape);
    }

    [Fact]
    public void Attention_equals_an_independent_computation_from_the_block_weights()
    {
        torch.manual_seed(5);
        using var model = new VisionTransformer(Tiny());
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var images = torch.randn(2, 3, 16, 16);
        using var output = model.ForwardBlocks(images);

        // Block 0 attention by hand: tokens → LayerNorm(norm1) → q, k per head → softmax(q·kᵀ/√d).
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        var x0 = model.EmbedTokens(images);                                                       // [B, T, D]
        var normed = nn.functional.layer_norm(x0, new long[] { 8 }, p["blocks.0.norm1.weight"], p["blocks.0.norm1.bias"], 1e-6);
        var qkv = torch.matmul(normed, p["blocks.0.attn.qkv.weight"].t()) + p["blocks.0.attn.qkv.bias"];   // [B, T, 3D]
        for (int head = 0; head < 2; head++)
        {
            var q = qkv.narrow(2, head * 4, 4);
            var k = qkv.narrow(2, 8 + head * 4, 4);
            var expected = torch.softmax(torch.bmm(q, k.transpose(1, 2)) / 2.0, 2);                // √4 = 2
            TensorAssert.Close(expected, output.Attentions[0].select(1, head), 1e-5, $"head {head}");
        }
        var rowSums = output.Attentions[1].sum(new long[] { -1 });
        TensorAssert.Close(torch.ones_like(rowSums), rowSums, 1e-5, "rows sum to 1");
        Assert.Equal(new long[] { 2, 2, 8 }, output.ClassTokens.shape);
        Assert.Equal(new long[] { 2, 4, 8 }, output.PatchTokens.shape);

        // ForwardFeatures = ForwardBlocks followed by the final LayerNorm.
        using var features = model.ForwardFeatures(images);
        var normedPatches = nn.functional.layer_norm(output.PatchTokens, new long[] { 8 }, p["norm.weight"], p["norm.bias"], 1e-6);
        TensorAssert.Close(normedPatches, features.PatchTokens, 1e-5, "final norm");
    }

    [Fact]
    public void Other_input_sizes_use_the_resized_position_embedding()
    {
        torch.manual_seed(6);
        using var model = new VisionTransformer(Tiny());
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var images = torch.randn(1, 3, 24, 40);
        using var output = model.ForwardBlocks(images);
        Assert.Equal((3, 5), (output.GridHeight, output.GridWidth));
        Assert.Equal(new long[] { 1, 2, 2 + 15, 2 + 15 }, output.Attentions[0].shape);
        var expected = PositionEmbedding.Resize(model.PositionEmbeddingParameter, 2, 3, 5, PositionEmbeddingResize.DinoScaleFactor);
        var tokens = model.EmbedTokens(images);
        var patches = nn.functional.conv2d(images, model.named_parameters().First(p => p.name == "patch_embed.proj.weight").parameter,
            model.named_parameters().First(p => p.name == "patch_embed.proj.bias").parameter, strides: new long[] { 8, 8 }).flatten(2).transpose(1, 2);
        TensorAssert.Close(patches + expected.narrow(1, 2, 15), tokens.narrow(1, 2, 15), 1e-5, "patch tokens + resized pos");
    }

    [Fact]
    public void Bad_input_is_a_clear_error()
    {
        using var model = new VisionTransformer(Tiny());
        using var gray = torch.zeros(1, 1, 16, 16);
        Assert.Contains("[B, 3, H, W]", Assert.Throws<WeakSegException>(() => model.ForwardBlocks(gray)).Message);
        using var small = torch.zeros(1, 3, 4, 16);
        Assert.Contains("smaller than one 8×8 patch", Assert.Throws<WeakSegException>(() => model.ForwardBlocks(small)).Message);
    }

    [Fact]
    public void Drop_path_is_identity_in_eval_and_drops_whole_samples_in_training()
    {
        torch.manual_seed(7);
        using var dropPath = new DropPath(0.5);
        using var scope = torch.NewDisposeScope();
        var x = torch.ones(64, 3, 2);
        dropPath.eval();
        TensorAssert.Close(x, dropPath.call(x), 0, "eval");
        dropPath.train();
        var y = dropPath.call(x);
        var perSample = y.reshape(64, 6);
        var values = perSample.data<float>().ToArray();
        for (int s = 0; s < 64; s++)
        {
            var v = values[s * 6];
            Assert.True(v == 0f || v == 2f, $"sample {s}: {v}");
            for (int j = 1; j < 6; j++) Assert.Equal(v, values[s * 6 + j]);
        }
        int kept = Enumerable.Range(0, 64).Count(s => values[s * 6] == 2f);
        Assert.InRange(kept, 16, 48);
    }
}

[Collection("Torch")]
public class WeightInitTests
{
    [Fact]
    public void Truncated_normal_has_the_requested_spread_and_respects_bounds()
    {
        torch.manual_seed(3);
        using var t = torch.empty(20000);
        WeakSeg.Models.WeightInit.TruncNormal_(t, std: 0.02);
        Assert.InRange(t.std().item<float>(), 0.0195, 0.0205);
        Assert.InRange(t.mean().item<float>(), -0.0005, 0.0005);
        using var u = torch.empty(20000);
        WeakSeg.Models.WeightInit.TruncNormal_(u, std: 1.0, a: -1.0, b: 1.0);
        Assert.True(u.abs().max().item<float>() <= 1.0f);
        // std of N(0,1) truncated to [-1, 1] is sqrt(1 - 2·φ(1)/(Φ(1)-Φ(-1))) = 0.5396
        Assert.InRange(u.std().item<float>(), 0.530, 0.545);
    }

    [Fact]
    public void Fresh_vit_has_distinct_class_tokens_and_non_uniform_attention()
    {
        torch.manual_seed(0);
        using var model = new WeakSeg.Models.Vit.VisionTransformer(new WeakSeg.Models.Vit.VitConfig
        { ImageSize = 32, PatchSize = 8, EmbedDim = 32, Depth = 2, NumHeads = 2, NumClassTokens = 3, DropPathRate = 0 });
        model.eval();
        using var scope = torch.NewDisposeScope();
        var cls = model.ClassTokenParameter;
        Assert.True((cls[0, 0] - cls[0, 1]).abs().max().item<float>() > 1e-3);
        var output = model.call(torch.randn(1, 3, 32, 32));
        var attn = output.Attentions[0];                                  // [1, H, T, T]
        Assert.True((attn - 1.0 / attn.shape[3]).abs().max().item<float>() > 1e-3);
    }
}
