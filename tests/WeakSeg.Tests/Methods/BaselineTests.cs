using TorchSharp;
using WeakSeg.Methods.Baselines;
using WeakSeg.Models.Vit;
using WeakSeg.Tests.Support;
using static TorchSharp.torch;

namespace WeakSeg.Tests.Methods;

[Collection("Torch")]
public class BaselineTests
{
    static VitConfig Backbone => new() { ImageSize = 32, PatchSize = 8, EmbedDim = 16, Depth = 3, NumHeads = 2, DropPathRate = 0 };

    [Fact]
    public void Cam_is_the_classifier_applied_per_patch_and_averages_to_the_logits()
    {
        torch.manual_seed(31);
        using var model = new CamBaselineModel(new CamBaselineConfig { NumClasses = 4, Backbone = Backbone });
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        Assert.Equal(new long[] { 4, 16 }, p["head.weight"].shape);
        using (var init = torch.randn(4)) p["head.bias"].copy_(init);   // non-zero bias so the identity below is not trivial
        using var output = model.Forward(torch.randn(2, 3, 32, 32));

        // CAM[b, k, y, x] = Σ_d W[k, d] · token[b, y·w + x, d] (hand loop on one entry).
        var tokens = output.Backbone.PatchTokens;
        double expected = 0;
        for (int d = 0; d < 16; d++) expected += p["head.weight"][2, d].item<float>() * tokens[1, 1 * 4 + 3, d].item<float>();
        Assert.Equal(expected, output.Cams[1, 2, 1, 3].item<float>(), 5);
        // Spatial mean of the CAM plus the bias equals the logits (GAP and linear commute).
        TensorAssert.Close(output.Logits, output.Cams.mean(new long[] { 2, 3 }) + p["head.bias"], 1e-5, "cam mean");
    }

    [Fact]
    public void Vit_cls_map_is_the_class_token_attention_of_the_last_layers_for_every_class()
    {
        torch.manual_seed(32);
        using var model = new VitClsModel(new VitClsConfig { NumClasses = 3, Backbone = Backbone, CamLayers = 2 });
        model.eval();
        using var scope = torch.NewDisposeScope();
        using var noGrad = torch.no_grad();
        using var output = model.Forward(torch.randn(1, 3, 32, 32));
        var maps = model.ClassAgnosticMaps(output.Backbone);                                       // [1, 3, 4, 4]
        Assert.Equal(new long[] { 1, 3, 4, 4 }, maps.shape);

        // Hand: mean over heads of A[l][0, :, 0, 1 + p] summed over layers 1 and 2.
        var expected = new float[16];
        for (int l = 1; l <= 2; l++)
            for (int h = 0; h < 2; h++)
                for (int q = 0; q < 16; q++) expected[q] += output.Backbone.Attentions[l][0, h, 0, 1 + q].item<float>() / 2;
        var expectedMap = torch.tensor(expected).reshape(1, 1, 4, 4);
        for (int k = 0; k < 3; k++) TensorAssert.Close(expectedMap, maps.narrow(1, k, 1), 1e-6, $"class {k}");

        // Logits: the head on the normed class token.
        var p = model.named_parameters().ToDictionary(x => x.name, x => x.parameter);
        var logits = torch.matmul(output.Backbone.ClassTokens.select(1, 0), p["head.weight"].t()) + p["head.bias"];
        TensorAssert.Close(logits, output.Logits, 1e-5, "logits");
    }
}
