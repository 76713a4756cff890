using System.CommandLine;
using WeakSeg.Pipelines;

namespace WeakSeg.Cli.Options;

/// <summary>
/// The options that set any field of a training recipe, shared by `train` and `pipeline`: <c>--set SECTION.FIELD=VALUE</c> (repeatable)
/// <c>--fusion NAME</c>, an alias of <c>--set model.fusion=NAME</c>, and <c>--backbone STEM</c>, an alias of
/// <c>--set model.backbone.stem=STEM</c>. Method knobs travel this way, so no command names a method.
/// </summary>
internal sealed class RecipeOptions
{
    readonly Option<string[]> _set = new("--set")
    {
        Description = "Set one recipe field, SECTION.FIELD=VALUE, after --config (repeatable), e.g. --set model.fusion=mean-sum --set trainer.steps=200.",
        AllowMultipleArgumentsPerToken = false,
    };

    readonly Option<string?> _fusion = new("--fusion") { Description = "Alias of --set model.fusion=NAME (head weighting, for a method that has one: aaf, mean-sum or fixed-random)." };

    readonly Option<string?> _backbone = new("--backbone")
    {
        Description = "How a class-token method's ViT makes its tokens: patch (a p×p convolution), resnet18-s8 or resnet18-s16 (the packaged " +
                      "ImageNet ResNet-18 up to stride 8 or 16, frozen unless --set model.backbone.freeze_stem=false; patch size must equal the stride). " +
                      "Alias of --set model.backbone.stem=NAME, applied before --set.",
    };

    public IEnumerable<Option> All => [_set, _fusion, _backbone];

    /// <summary>The recipe with --backbone, then every --set (in order), then --fusion, laid over it.</summary>
    public TrainRecipe Apply(TrainRecipe recipe, ParseResult parseResult)
    {
        if (parseResult.GetValue(_backbone) is { } stem)
        {
            var name = WeakSeg.Models.Vit.VitStems.Name(WeakSeg.Models.Vit.VitStems.Parse(stem));
            if (recipe.ModelConfig.BackboneConfig is null)
                throw new WeakSegException($"--backbone {name}: method '{recipe.Method}' has no ViT backbone (its network is fixed)");
            recipe = recipe.With("model.backbone.stem=" + name);
        }
        foreach (var assignment in parseResult.GetValue(_set) ?? []) recipe = recipe.With(assignment);
        if (parseResult.GetValue(_fusion) is { } fusion) recipe = recipe.With("model.fusion=" + fusion);
        return recipe;
    }
}
