using TorchSharp;
using WeakSeg.Interop;
using WeakSeg.Methods.Baselines;
using WeakSeg.Methods.MctFormer;
using WeakSeg.Models.Vit;
using WeakSeg.Models.Weights;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Models;

[Collection("Torch")]
public class TimmWeightImportTests
{
    static VitConfig Backbone(int imageSize, int dim = 8) => new()
    {
        ImageSize = imageSize, PatchSize = 8, EmbedDim = dim, Depth = 2, NumHeads = 2, DropPathRate = 0,
    };

    static Dictionary<string, Tensor> Parameters(nn.Module m) => m.named_parameters().ToDictionary(p => p.name, p => (Tensor)p.parameter);

    /// <summary>Saves a plain ViT classifier (1 class token, Linear head with 4 classes) with DDP-style "module." keys and an extra key.</summary>
    static string SaveTimmCheckpoint(TempDir dir, int imageSize, int dim = 8, IEnumerable<string>? drop = null)
    {
        torch.manual_seed(11);
        using var source = new VitClsModel(new VitClsConfig { NumClasses = 4, Backbone = Backbone(imageSize, dim), CamLayers = 1 });
        var tensors = source.state_dict()
            .Where(p => drop is null || !drop.Any(d => p.Key.StartsWith(d, StringComparison.Ordinal)))
            .ToDictionary(p => "module." + p.Key, p => p.Value);
        using var distToken = torch.zeros(1, 1, dim);
        tensors["module.dist_token"] = distToken;
        var path = dir.File("vit.safetensors");
        SafetensorsFile.Write(path, tensors, new Dictionary<string, string> { ["format"] = "pt" });
        return path;
    }

    [Fact]
    public void Plain_vit_loads_everything_and_resizes_the_position_grid()
    {
        using var dir = TestPaths.NewTempDir();
        var path = SaveTimmCheckpoint(dir, imageSize: 32);                    // 4×4 grid
        using var target = new VitClsModel(new VitClsConfig { NumClasses = 4, Backbone = Backbone(48), CamLayers = 1 });   // 6×6 grid
        var report = TimmWeightImport.LoadFile(target, path);

        Assert.Empty(report.Missing);
        Assert.Empty(report.Skipped);
        Assert.Equal(new[] { "dist_token" }, report.Unexpected);
        Assert.Equal(target.state_dict().Count, report.Loaded.Count);
        Assert.Contains("pos_embed", report.Loaded);

        var file = SafetensorsFile.Read(path);
        using var scope = torch.NewDisposeScope();
        var p = Parameters(target);
        TensorAssert.Close(file.ToTorch("module.blocks.1.attn.qkv.weight"), p["blocks.1.attn.qkv.weight"], 0, "qkv");
        TensorAssert.Close(file.ToTorch("module.cls_token"), p["cls_token"], 0, "cls_token");
        TensorAssert.Close(file.ToTorch("module.head.weight"), p["head.weight"], 0, "head");
        var expectedPos = PositionEmbedding.Resize(file.ToTorch("module.pos_embed"), 1, 6, 6, PositionEmbeddingResize.DinoScaleFactor);
        Assert.Equal(new long[] { 1, 37, 8 }, p["pos_embed"].shape);
        TensorAssert.Close(expectedPos, p["pos_embed"], 1e-6, "pos_embed resized");
    }

    [Fact]
    public void Mctformer_keeps_fresh_class_tokens_and_position_embedding_and_skips_the_linear_head()
    {
        using var dir = TestPaths.NewTempDir();
        var path = SaveTimmCheckpoint(dir, imageSize: 32);
        torch.manual_seed(12);
        using var model = new MctFormerModel(new MctFormerConfig { NumClasses = 3, Backbone = Backbone(32), CamLayers = 1 });
        using var clsBefore = Parameters(model)["cls_token"].clone();
        using var posBefore = Parameters(model)["pos_embed"].clone();
        using var headBefore = Parameters(model)["head.weight"].clone();
        var report = TimmWeightImport.LoadFile(model, path);

        Assert.Equal(new[] { "cls_token", "pos_embed", "head.weight", "head.bias" }.Order(), report.Skipped.Select(s => s.Key).Order());
        Assert.Contains("1 class token(s), the model 3", report.Skipped.First(s => s.Key == "cls_token").Reason);
        Assert.Contains("[4, 8] in the checkpoint, [3, 8, 3, 3] in the model", report.Skipped.First(s => s.Key == "head.weight").Reason);
        Assert.Empty(report.Missing);
        Assert.Equal(new[] { "dist_token" }, report.Unexpected);
        Assert.Equal(2 + 12 * 2 + 2, report.Loaded.Count);   // patch_embed, blocks, norm

        var p = Parameters(model);
        TensorAssert.Close(clsBefore, p["cls_token"], 0, "cls_token untouched");
        TensorAssert.Close(posBefore, p["pos_embed"], 0, "pos_embed untouched");
        TensorAssert.Close(headBefore, p["head.weight"], 0, "head untouched");
        using var qkv = SafetensorsFile.Read(path).ToTorch("module.blocks.0.attn.qkv.weight");
        TensorAssert.Close(qkv, p["blocks.0.attn.qkv.weight"], 0, "qkv loaded");
    }

    [Fact]
    public void Keep_fresh_policy_and_missing_keys_are_reported()
    {
        using var dir = TestPaths.NewTempDir();
        var path = SaveTimmCheckpoint(dir, imageSize: 32, drop: new[] { "blocks.1.mlp." });
        using var model = new VitClsModel(new VitClsConfig { NumClasses = 4, Backbone = Backbone(32), CamLayers = 1 });
        var report = TimmWeightImport.LoadFile(model, path, new WeightImportOptions { ClassTokens = ClassTokenImport.KeepFresh });
        Assert.Equal(new[] { "cls_token", "pos_embed" }, report.Skipped.Select(s => s.Key).Order());
        Assert.Equal(new[] { "blocks.1.mlp.fc1.bias", "blocks.1.mlp.fc1.weight", "blocks.1.mlp.fc2.bias", "blocks.1.mlp.fc2.weight" }, report.Missing.Order());
    }

    [Fact]
    public void Shape_mismatch_on_a_required_key_names_the_key_both_shapes_and_the_file_and_changes_nothing()
    {
        using var dir = TestPaths.NewTempDir();
        var path = SaveTimmCheckpoint(dir, imageSize: 32, dim: 8);
        using var model = new MctFormerModel(new MctFormerConfig { NumClasses = 3, Backbone = Backbone(32, dim: 16), CamLayers = 1 });
        using var before = Parameters(model)["blocks.0.norm1.weight"].clone();
        var e = Assert.Throws<WeakSegException>(() => TimmWeightImport.LoadFile(model, path));
        Assert.Contains(path, e.Message);
        Assert.Contains("'patch_embed.proj.weight' has shape [8, 3, 8, 8] but the model expects [16, 3, 8, 8]", e.Message);
        TensorAssert.Close(before, Parameters(model)["blocks.0.norm1.weight"], 0, "unchanged");
    }

    [Fact]
    public void Prefixes_are_stripped()
    {
        using var a = torch.zeros(1);
        using var b = torch.zeros(1);
        var stripped = TimmWeightImport.StripKeyPrefixes(new Dictionary<string, Tensor> { ["module.model.norm.weight"] = a, ["head.bias"] = b }, new[] { "module.", "model." });
        Assert.Equal(new[] { "head.bias", "norm.weight" }, stripped.Keys.Order());
    }
}
